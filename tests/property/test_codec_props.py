"""Canonical encoding: round-trips, and the same value gives the same bytes whatever the order."""

from hypothesis import given, settings, strategies as st

from chainvoice import codec

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20), st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=400)
@given(values)
def test_round_trip(value):
    raw = codec.encode(value)
    assert codec.decode(raw) == value
    assert codec.encode(codec.decode(raw)) == raw


def _shuffled(value, rnd):
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@settings(max_examples=400)
@given(values, st.randoms(use_true_random=False))
def test_insertion_order_does_not_change_bytes(value, rnd):
    assert codec.encode(_shuffled(value, rnd)) == codec.encode(value)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_decoding_random_bytes_never_crashes(raw):
    try:
        codec.decode(raw)
    except codec.EncodingError:
        pass
