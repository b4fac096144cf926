import hashlib
import os
import stat

import msgpack
import pytest
from hypothesis import given, settings, strategies as st
from nacl.bindings import crypto_core_ed25519_add, crypto_scalarmult_ed25519_base_noclamp

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


# -- transaction signatures: ed25519-zebra behind libsodium's encoding rules ---------------------

_L = 2**252 + 27742317777372353535851937790883648493
_P = 2**255 - 19
# libsodium's small-order blacklist (ge25519_has_small_order), byte for byte from its source.
_SMALL_ORDER = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    b"\xec" + b"\xff" * 30 + b"\x7f",
    b"\xed" + b"\xff" * 30 + b"\x7f",
    b"\xee" + b"\xff" * 30 + b"\x7f",
]


def _libsodium(pk: bytes, msg: bytes, sig: bytes) -> bool:
    return crypto.verify(pk, msg, sig)


def _with_sign_bit(b: bytes) -> bytes:
    return b[:31] + bytes([b[31] | 0x80])


def test_transaction_check_accepts_what_libsodium_accepts():
    for i in range(50):
        key = crypto.SigningKey.from_seed(hashlib.sha256(b"seed%d" % i).digest())
        msg = crypto.tx_signing_message(b"envelope %d" % i)
        sig = key.sign(msg)
        assert crypto.verify_transaction(key.public_key, msg, sig)
        assert _libsodium(key.public_key, msg, sig)


@settings(max_examples=300, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), msg=st.binary(max_size=200),
       where=st.sampled_from(["sig", "pk", "msg"]), pos=st.integers(0, 255), bit=st.integers(0, 7))
def test_transaction_check_agrees_with_libsodium_on_corrupted_signatures(seed, msg, where, pos, bit):
    key = crypto.SigningKey.from_seed(seed)
    sig, pk = key.sign(msg), key.public_key
    if where == "sig":
        sig = bytearray(sig); sig[pos % 64] ^= 1 << bit; sig = bytes(sig)
    elif where == "pk":
        pk = bytearray(pk); pk[pos % 32] ^= 1 << bit; pk = bytes(pk)
    else:
        msg = msg + b"\x00" if not msg else msg[:-1] + bytes([msg[-1] ^ (1 << bit)])
    assert crypto.verify_transaction(pk, msg, sig) == _libsodium(pk, msg, sig)


def test_transaction_check_rejects_what_libsodium_rejects_by_encoding():
    key = crypto.SigningKey.from_seed(b"\x07" * 32)
    msg = b"m"
    sig = key.sign(msg)
    s = int.from_bytes(sig[32:], "little")
    # S + L verifies under the plain equation, but S must be < L (no malleability).
    big_s = sig[:32] + (s + _L).to_bytes(32, "little")
    assert not crypto.verify_transaction(key.public_key, msg, big_s)
    assert not _libsodium(key.public_key, msg, big_s)
    for point in _SMALL_ORDER + [_with_sign_bit(p) for p in _SMALL_ORDER]:
        # a small-order public key with R = the identity and S = 0 satisfies both equations
        forged = b"\x01" + bytes(31) + bytes(32)
        assert not crypto.verify_transaction(point, msg, forged), point.hex()
        assert not _libsodium(point, msg, forged)
        assert not crypto.verify_transaction(key.public_key, msg, point + sig[32:]), point.hex()
    # A non-canonical public key (y >= p) is refused unread.
    for y in (_P + 2, _P + 3, 2**255 - 1):
        pk = y.to_bytes(32, "little")
        assert not crypto.verify_transaction(pk, msg, sig)
        assert not _libsodium(pk, msg, sig)
    for bad in (("k" * 32, msg, sig), (key.public_key, msg, "s" * 64), (key.public_key[:31], msg, sig),
                (key.public_key, msg, sig[:63]), (key.public_key, "m", sig)):
        assert not crypto.verify_transaction(*bad)  # wrong types or lengths: False, not an exception


def _secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248; h[31] &= 127; h[31] |= 64
    return int.from_bytes(h, "little")


def test_the_one_documented_difference_a_holder_signing_with_a_small_order_component():
    """A key's holder can add a small-order point to R: the cofactored equation (zebra, RFC 8032
    §5.1.7) accepts it, libsodium's cofactorless one does not. Nobody else can: R is hashed into
    k, so changing another's R breaks the signature under both (checked below)."""
    seed = b"\x05" * 32
    key = crypto.SigningKey.from_seed(seed)
    msg = crypto.tx_signing_message(b"envelope")
    r = int.from_bytes(hashlib.sha256(b"nonce").digest(), "little") % _L
    r0 = crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little"))
    order8 = _SMALL_ORDER[2]
    big_r = crypto_core_ed25519_add(r0, order8)
    k = int.from_bytes(hashlib.sha512(big_r + key.public_key + msg).digest(), "little") % _L
    s = (r + k * _secret_scalar(seed)) % _L
    sig = big_r + s.to_bytes(32, "little")
    assert crypto.verify_transaction(key.public_key, msg, sig)
    assert not _libsodium(key.public_key, msg, sig)
    # A third party adding the same point to an honest signature's R gets nothing under either.
    honest = key.sign(msg)
    moved = crypto_core_ed25519_add(honest[:32], order8) + honest[32:]
    assert not crypto.verify_transaction(key.public_key, msg, moved)
    assert not _libsodium(key.public_key, msg, moved)
