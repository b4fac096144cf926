"""The decoder's quick path never accepts what the full checks refuse, and takes every good body.

``fastcheck.accepts`` answers "schema-valid and canonically shaped" in one generated function per
kind; ``transaction.decode`` trusts it to skip the canonical walk and ``schema.validate``. So:

- on bodies generated from the schema, and on mutations of them (a key dropped, added, moved out
  of order; a value of the wrong type, out of range, too long, too short; a bad line), a yes from
  ``accepts`` is exactly a yes of both full checks;
- on signed transactions and mutations of their bytes, ``decode`` gives the same transaction, or
  the same error code, with and without the quick path.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from chainvoice import codec, crypto
from chainvoice.ledger import fastcheck, schema, transaction
from chainvoice.ledger.codes import MalformedTransaction
from chainvoice.ledger.schema import Field

COMPILED = sorted(fastcheck.CHECKS)
KEY = crypto.SigningKey.from_seed(hashlib.sha256(b"fastcheck").digest())
CHAIN = "cv-fastcheck"


def values(spec: Field) -> st.SearchStrategy:
    """Values that pass ``spec`` (short ones: lengths near the limits come from mutations)."""
    if spec.type == "str":
        if spec.choices is not None:
            return st.sampled_from(spec.choices)
        if spec.pattern is not None:
            return st.from_regex(spec.pattern, fullmatch=True).filter(lambda s: len(s) <= (spec.max or 10**9))
        lo = spec.min or 0
        return st.text(min_size=lo, max_size=min(spec.max or 40, lo + 12))
    if spec.type == "int":
        return st.integers(codec.INT64_MIN if spec.min is None else spec.min, codec.INT64_MAX)
    if spec.type == "key":
        return st.binary(min_size=32, max_size=32)
    if spec.type == "list":
        lo = spec.min or 0
        return st.lists(values(spec.items), min_size=lo, max_size=min(spec.max or 3, lo + 2))
    return maps(spec.fields)


def maps(fields: dict[str, Field]) -> st.SearchStrategy:
    required = {n: values(f) for n, f in fields.items() if f.required}
    optional = {n: values(f) for n, f in fields.items() if not f.required}
    # Canonical form, as a decoded transaction holds it: keys in sorted order.
    return st.fixed_dictionaries(required, optional=optional).map(lambda m: dict(sorted(m.items())))


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.just(codec.INT64_MAX + 1), st.just(codec.INT64_MIN - 1),
    st.just(2**64 - 1), st.integers(-5, 5), st.text(max_size=3), st.binary(max_size=33), st.just([]), st.just({}),
    st.just("x" * 201), st.just("x" * 501), st.just(b"\x00" * 31), st.just([{}]), st.just(["a"]),
)


def just_outside(spec: Field) -> st.SearchStrategy:
    """Values that fail ``spec`` by a little: one past a limit, the wrong type of a near kind."""
    bad: list = [None, True, 1.5]
    if spec.type == "str":
        bad += [7, b"x"]
        if spec.max is not None:
            bad.append("x" * (spec.max + 1))
        if spec.min:
            bad.append("x" * (spec.min - 1))
        if spec.choices is not None:
            bad.append(spec.choices[0].upper())
        if spec.pattern is not None:
            bad += ["1" * 19 + "a", "1" * 19, "1" * 20 + "\n"]
    elif spec.type == "int":
        bad += [codec.INT64_MAX + 1, codec.INT64_MIN - 1, 2**64 - 1, "1"]
        if spec.min is not None:
            bad.append(spec.min - 1)
    elif spec.type == "key":
        bad += [b"\x00" * 31, b"\x00" * 33, "00" * 32]
    elif spec.type == "list":
        bad += [{}, "x"]
        if spec.min:
            bad.append([])
        if spec.max is not None:
            return st.one_of(st.sampled_from(bad), values(spec.items).map(lambda v: [v] * (spec.max + 1)))
    else:
        bad += [[], {"zzz": 1}]
    return st.sampled_from(bad)


def just_inside(spec: Field) -> st.SearchStrategy:
    """Values that pass ``spec`` at its limits."""
    good: list = []
    if spec.type == "str" and spec.choices is None and spec.pattern is None:
        good = ["x" * spec.max] if spec.max is not None else []
        if spec.min is not None:
            good.append("y" * spec.min)
    elif spec.type == "int":
        good = [codec.INT64_MAX, codec.INT64_MIN if spec.min is None else spec.min]
    return st.sampled_from(good) if good else values(spec)


@st.composite
def mutated(draw, kind: str, body: dict) -> dict:
    """``body`` with one to three mutations, anywhere in it (lines included)."""
    m = {k: (list(v) if type(v) is list else v) for k, v in body.items()}
    for _ in range(draw(st.integers(1, 3))):
        target, fields = m, schema.BODIES[kind]
        if "lines" in m and type(m["lines"]) is list and m["lines"] and draw(st.booleans()):
            i = draw(st.integers(0, len(m["lines"]) - 1))
            line = m["lines"][i]
            target = dict(line) if type(line) is dict else {}
            m["lines"][i] = target
            fields = schema.LINE.fields
        how = draw(st.sampled_from(["drop", "add", "retype", "outside", "inside", "reorder"]))
        if how == "drop" and target:
            target.pop(draw(st.sampled_from(sorted(target))))
        elif how == "add":
            target[draw(st.sampled_from(["zzz", "a", "Lines", ""] + sorted(fields)))] = draw(ODD_VALUES)
        elif how == "retype" and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(ODD_VALUES)
        elif how in ("outside", "inside"):
            name = draw(st.sampled_from(sorted(fields)))
            spec = fields[name]
            target[name] = draw(just_outside(spec) if how == "outside" else just_inside(spec))
            if how == "inside":  # keep the map canonical: the value is the only change
                ordered = dict(sorted(target.items()))
                target.clear()
                target.update(ordered)
        elif how == "reorder" and len(target) > 1:
            order = draw(st.permutations(list(target.items())))
            target.clear()
            target.update(order)
    return m


def full_checks_accept(kind: str, body: object) -> bool:
    if not codec._is_canonical_value(body, 1):
        return False
    try:
        schema.validate(kind, body)
    except MalformedTransaction:
        return False
    return True


@st.composite
def kind_and_body(draw):
    kind = draw(st.sampled_from(COMPILED))
    return kind, draw(maps(schema.BODIES[kind]))


@settings(max_examples=400, deadline=None)
@given(kb=kind_and_body())
def test_every_well_formed_body_gets_a_yes(kb):
    kind, body = kb
    assert full_checks_accept(kind, body)
    assert fastcheck.accepts(kind, body)


@settings(max_examples=1500, deadline=None)
@given(kb=kind_and_body(), data=st.data())
def test_a_yes_is_exactly_a_yes_of_the_full_checks_on_mutated_bodies(kb, data):
    kind, body = kb
    bad = data.draw(mutated(kind, body))
    assert fastcheck.accepts(kind, bad) == full_checks_accept(kind, bad)


def test_kinds_with_rules_across_fields_and_unknown_kinds_always_take_the_full_path():
    body = {"key": KEY.public_key, "name": "Shop", "role": "tax"}
    schema.validate("register_member", body)
    assert not fastcheck.accepts("register_member", body)
    assert not fastcheck.accepts("no_such_kind", body)
    assert not fastcheck.accepts(["issue"], body)


def _decode_both(raw: bytes, monkeypatch) -> tuple[object, object]:
    def outcome():
        try:
            return transaction.decode(raw, chain_id=CHAIN)
        except MalformedTransaction as exc:
            return exc.code
    quick = outcome()
    with monkeypatch.context() as m:
        m.setattr(transaction, "_well_formed", lambda raw, chain_id: None)
        full = outcome()
    return quick, full


@settings(max_examples=300, deadline=None)
@given(kb=kind_and_body(), data=st.data())
def test_decode_gives_the_same_result_with_and_without_the_quick_path(kb, data):
    kind, body = kb
    monkeypatch = pytest.MonkeyPatch()
    try:
        if data.draw(st.booleans()):
            body = data.draw(mutated(kind, body))
        try:
            tx = transaction.sign(KEY, data.draw(st.sampled_from([CHAIN, "cv-other"])), kind, body, b"n" * 16)
            raw = tx.raw
        except (MalformedTransaction, codec.EncodingError):
            # sign() refuses what it cannot encode or what fails the schema: craft the bytes.
            envelope = {"body": body, "chain_id": CHAIN, "kind": kind, "nonce": b"n" * 16,
                        "signature": b"s" * 64, "signer": KEY.public_key}
            try:
                raw = codec.encode(envelope)
            except codec.EncodingError:
                return
        raw = bytearray(raw)
        for _ in range(data.draw(st.integers(0, 2))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        quick, full = _decode_both(bytes(raw), monkeypatch)
        assert quick == full
    finally:
        monkeypatch.undo()


def test_decode_takes_the_quick_path_for_a_good_transaction(monkeypatch):
    body = {"number": "26449001000000000001", "to": KEY.public_key}
    tx = transaction.sign(KEY, CHAIN, "transfer", body, b"n" * 16)
    full_path = []
    real = transaction._checked
    monkeypatch.setattr(transaction, "_checked", lambda raw, cid: full_path.append(raw) or real(raw, cid))
    assert transaction.decode(tx.raw, chain_id=CHAIN) == tx
    assert full_path == []
    with pytest.raises(MalformedTransaction):
        transaction.decode(tx.raw, chain_id="cv-other")
    assert full_path == [tx.raw]
