import os
import stat

import msgpack
import pytest

from chainvoice import crypto


def test_sign_verify_and_domain_separation():
    key = crypto.SigningKey.generate()
    msg = crypto.tx_signing_message(b"\x80")
    sig = key.sign(msg)
    assert crypto.verify(key.public_key, msg, sig)
    assert not crypto.verify(key.public_key, b"\x80", sig)  # same bytes without the domain
    other = crypto.SigningKey.generate()
    assert not crypto.verify(other.public_key, msg, sig)
    bad = bytearray(sig); bad[0] ^= 1
    assert not crypto.verify(key.public_key, msg, bytes(bad))
    assert not crypto.verify(key.public_key[:31], msg, sig)
    assert not crypto.verify(key.public_key, msg, sig[:63])


def test_commit_message_is_the_spec_array():
    m = crypto.commit_message("cv-test", 7, 2, b"\x11" * 32)
    assert msgpack.unpackb(m) == ["chainvoice-commit-v1", "cv-test", 7, 2, b"\x11" * 32]


def test_deterministic_from_seed():
    a = crypto.SigningKey.from_seed(b"\x01" * 32)
    b = crypto.SigningKey.from_seed(b"\x01" * 32)
    assert a.public_key == b.public_key and a.sign(b"x") == b.sign(b"x")
    assert "01" * 32 not in repr(a)


def test_key_file_mode_0600_and_round_trip(tmp_path):
    key = crypto.SigningKey.generate()
    path = tmp_path / "k" / "merchant.key"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert crypto.SigningKey.load(path).public_key == key.public_key


def test_bad_key_files_are_clear_errors(tmp_path):
    with pytest.raises(crypto.KeyFileError, match="not found"):
        crypto.SigningKey.load(tmp_path / "missing.key")
    junk = tmp_path / "junk.key"
    junk.write_text("hello")
    with pytest.raises(crypto.KeyFileError, match="not a chainvoice key"):
        crypto.SigningKey.load(junk)
    k = crypto.SigningKey.generate()
    k.save(junk)
    text = junk.read_text().replace(k.public_key.hex(), "00" * 32)
    junk.write_text(text)
    with pytest.raises(crypto.KeyFileError, match="corrupt"):
        crypto.SigningKey.load(junk)
