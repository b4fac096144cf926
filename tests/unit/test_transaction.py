"""The signed envelope (SPEC §4): exact signing message and tx_id, and malformed input refused."""

import hashlib

import msgpack
import pytest

from chainvoice import codec, crypto
from chainvoice.ledger import codes, schema
from chainvoice.ledger.codes import MalformedTransaction
from chainvoice.ledger.transaction import MAX_TX_BYTES, _envelope_bytes, decode, sign

from tests.support.world import CHAIN_ID, World, key_of

NONCE = b"\x07" * 16


def _issue_tx(w=None):
    w = w or World(standard=False)
    w.tax_ids["shop"] = "91110108551385082Q"
    return sign(key_of("shop"), CHAIN_ID, "issue", w.issue_body(), NONCE)


def test_signing_message_and_tx_id_are_exactly_the_spec():
    tx = _issue_tx()
    envelope = {"chain_id": CHAIN_ID, "kind": "issue", "body": tx.body, "signer": key_of("shop").public_key, "nonce": NONCE}
    message = b"chainvoice-tx-v1" + codec.encode(envelope)
    assert tx.tx_id == hashlib.sha256(message).digest()
    assert crypto.verify(tx.signer, message, tx.signature)
    assert tx.raw == codec.encode({**envelope, "signature": tx.signature})
    # the bytes cut from the wire form are the canonical envelope
    assert _envelope_bytes(tx.raw) == codec.encode(envelope)


def test_decode_round_trip():
    tx = _issue_tx()
    again = decode(tx.raw, chain_id=CHAIN_ID)
    assert again == tx


def _wire(tx, **change):
    m = codec.decode(tx.raw)
    m.update(change)
    return codec.encode(m)


def test_bad_signature_and_signer_swap():
    tx = _issue_tx()
    sig = bytearray(tx.signature); sig[5] ^= 0x40
    with pytest.raises(MalformedTransaction) as e:
        decode(_wire(tx, signature=bytes(sig)))
    assert e.value.code == codes.BAD_SIGNATURE
    with pytest.raises(MalformedTransaction) as e:
        decode(_wire(tx, signer=key_of("eve").public_key))
    assert e.value.code == codes.BAD_SIGNATURE
    body = dict(tx.body); body["total"] += 1
    with pytest.raises(MalformedTransaction) as e:
        decode(_wire(tx, body=body))
    assert e.value.code == codes.BAD_SIGNATURE


def test_wrong_chain():
    tx = _issue_tx()
    with pytest.raises(MalformedTransaction) as e:
        decode(tx.raw, chain_id="cv-other")
    assert e.value.code == codes.WRONG_CHAIN


def test_non_canonical_encoding_refused():
    tx = _issue_tx()
    m = codec.decode(tx.raw)
    unsorted = msgpack.packb(dict(reversed(list(m.items()))), use_bin_type=True)
    with pytest.raises(MalformedTransaction) as e:
        decode(unsorted)
    assert e.value.code == codes.BAD_ENCODING


@pytest.mark.parametrize("longer", [
    (b"\xa8transfer", b"\xd9\x08transfer"),  # the kind as str 8 instead of fixstr
    (b"\xa4body", b"\xda\x00\x04body"),  # a key as str 16
    (b"\xc4\x10" + NONCE, b"\xc5\x00\x10" + NONCE),  # the nonce as bin 16 instead of bin 8
])
def test_longer_forms_of_the_same_values_refused(longer):
    # The same map in a longer encoding has another tx_id: only the shortest form is accepted.
    tx = sign(key_of("shop"), CHAIN_ID, "transfer", {"number": "26440000000000000001", "to": key_of("alice").public_key}, NONCE)
    short, long = longer
    assert tx.raw.count(short) == 1
    raw = tx.raw.replace(short, long)
    assert codec.decode(raw, canonical=False) == codec.decode(tx.raw)
    with pytest.raises(MalformedTransaction) as e:
        decode(raw)
    assert e.value.code == codes.BAD_ENCODING


@pytest.mark.parametrize("raw,code", [
    (b"", codes.BAD_ENCODING),
    (b"\xff\xfe", codes.BAD_ENCODING),
    (codec.encode([1, 2, 3]), codes.BAD_ENVELOPE),
    (codec.encode({"kind": "issue"}), codes.BAD_ENVELOPE),
    (b"\x00" * (MAX_TX_BYTES + 1), codes.TOO_LARGE),
])
def test_garbage(raw, code):
    with pytest.raises(MalformedTransaction) as e:
        decode(raw)
    assert e.value.code == code


@pytest.mark.parametrize("field,value", [
    ("nonce", b"\x00" * 15), ("signer", b"\x00" * 31), ("signature", b"\x00" * 63),
    ("chain_id", ""), ("chain_id", 5), ("kind", 7), ("body", []),
])
def test_envelope_fields(field, value):
    tx = _issue_tx()
    with pytest.raises(MalformedTransaction) as e:
        decode(_wire(tx, **{field: value}))
    assert e.value.code == codes.BAD_ENVELOPE


def test_extra_envelope_key_refused():
    tx = _issue_tx()
    m = codec.decode(tx.raw); m["extra"] = 1
    with pytest.raises(MalformedTransaction) as e:
        decode(codec.encode(m))
    assert e.value.code == codes.BAD_ENVELOPE


@pytest.mark.parametrize("kind,body,fragment", [
    ("nope", {}, "unknown transaction kind"),
    ("transfer", {"number": "123", "to": b"\x00" * 32}, "must match"),
    ("transfer", {"number": "26440000000000000001"}, "missing field 'to'"),
    ("transfer", {"number": "26440000000000000001", "to": b"\x00" * 32, "x": 1}, "unknown field 'x'"),
    ("lock", {"number": "26440000000000000001", "claim_id": ""}, "must not be empty"),
    ("issue", {}, "missing field"),
    ("register_member", {"key": b"\x01" * 32, "role": "merchant", "name": "M"}, "needs 'tax_id'"),
    ("register_member", {"key": b"\x01" * 32, "role": "platform", "name": "P", "tax_id": "x"}, "does not apply"),
    ("register_member", {"key": b"\x01" * 32, "role": "king", "name": "K"}, "must be one of"),
    ("update_member", {"key": b"\x01" * 32}, "nothing to change"),
    ("request_red", {"number": "26440000000000000001", "amount": "5", "reason": "r"}, "expected an integer"),
])
def test_schema_errors_are_clear(kind, body, fragment):
    with pytest.raises(MalformedTransaction) as e:
        schema.validate(kind, body)
    assert e.value.code == codes.BAD_SCHEMA and fragment in e.value.message


def test_issue_line_schema_path_in_message():
    w = World(standard=False)
    w.tax_ids["shop"] = "91110108551385082Q"
    body = w.issue_body()
    body["lines"][1]["quantity"] = "2"
    with pytest.raises(MalformedTransaction, match=r"issue.lines\[1\].quantity: expected an integer"):
        schema.validate("issue", body)


def test_sign_refuses_a_bad_body():
    with pytest.raises(MalformedTransaction):
        sign(key_of("x"), CHAIN_ID, "transfer", {"number": "1"}, NONCE)


def test_every_kind_has_a_json_schema():
    for kind, fields in schema.BODIES.items():
        doc = schema.body_json_schema(fields)
        assert doc["type"] == "object" and doc["properties"], kind
