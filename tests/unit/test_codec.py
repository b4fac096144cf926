import msgpack
import pytest

from chainvoice import codec


def test_keys_sorted_recursively_and_bin_type():
    a = codec.encode({"b": 1, "a": {"z": b"\x00", "y": [{"d": 1, "c": 2}]}})
    b = codec.encode({"a": {"y": [{"c": 2, "d": 1}], "z": b"\x00"}, "b": 1})
    assert a == b
    # the exact bytes are plain msgpack of the sorted structure, with bin type for bytes
    assert a == msgpack.packb({"a": {"y": [{"c": 2, "d": 1}], "z": b"\x00"}, "b": 1}, use_bin_type=True)
    assert b"\xc4\x01\x00" in a  # bin8 of length 1


@pytest.mark.parametrize("bad", [1.5, {"x": 0.0}, [2**63], -(2**63) - 1, {1: "int key"}, {"s": {1, 2}}])
def test_refuses_what_is_not_canonical(bad):
    with pytest.raises(codec.EncodingError):
        codec.encode(bad)


def test_int64_bounds_are_allowed():
    for v in (2**63 - 1, -(2**63), 0, -1):
        assert codec.decode(codec.encode(v)) == v


def test_decode_refuses_unsorted_keys_and_floats():
    unsorted = msgpack.packb({"b": 1, "a": 2}, use_bin_type=True)
    with pytest.raises(codec.EncodingError, match="not canonical"):
        codec.decode(unsorted)
    with pytest.raises(codec.EncodingError):
        codec.decode(msgpack.packb({"a": 1.0}, use_bin_type=True))
    # a non-minimal integer encoding (uint32 for 1) is refused
    with pytest.raises(codec.EncodingError):
        codec.decode(b"\xce\x00\x00\x00\x01")
    assert codec.decode(unsorted, canonical=False) == {"b": 1, "a": 2}


@pytest.mark.parametrize("junk", [b"", b"\xc1", b"\x92\x01", b"\xdb\xff\xff\xff\xff", "text"])
def test_decode_garbage_is_a_clean_error(junk):
    with pytest.raises(codec.EncodingError):
        codec.decode(junk)


def test_hex_helpers():
    assert codec.to_json({"k": [b"\xab", 1, "s"]}) == {"k": ["ab", 1, "s"]}
    assert codec.from_hex("AB01", 2) == b"\xab\x01"
    with pytest.raises(codec.EncodingError):
        codec.from_hex("abc")
    with pytest.raises(codec.EncodingError):
        codec.from_hex("ab", 2)
