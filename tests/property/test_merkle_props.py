"""Every leaf of every tree of size 1..200 verifies; any flipped bit fails (RFC 9162 §2.1.3)."""

from hypothesis import given, settings, strategies as st

from chainvoice import merkle


def test_every_leaf_of_every_size_up_to_200_verifies():
    leaves_all = [b"leaf-%d" % i for i in range(200)]
    for n in range(1, 201):
        leaves = leaves_all[:n]
        hashes = [merkle.leaf_hash(x) for x in leaves]
        root = merkle.root_of_hashes(list(hashes))
        for i in range(n):
            path = merkle.inclusion_proof_from_hashes(list(hashes), i)
            assert merkle.verify_inclusion(leaves[i], i, n, path, root), (n, i)


@settings(max_examples=300, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=40), min_size=1, max_size=200),
    data=st.data(),
)
def test_any_flipped_bit_fails(leaves, data):
    n = len(leaves)
    i = data.draw(st.integers(0, n - 1), label="index")
    root = merkle.root(leaves)
    path = merkle.inclusion_proof(leaves, i)
    assert merkle.verify_inclusion(leaves[i], i, n, path, root)
    target = data.draw(st.sampled_from(["leaf", "path", "root"] if path else ["leaf", "root"]))
    if target == "leaf":
        raw = bytearray(leaves[i] or b"\x00")
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
        if bytes(raw) == leaves[i]:
            return
        assert not merkle.verify_inclusion(bytes(raw), i, n, path, root)
    elif target == "path":
        j = data.draw(st.integers(0, len(path) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(path[j])
        bad[bit // 8] ^= 1 << (bit % 8)
        forged = path[:j] + [bytes(bad)] + path[j + 1:]
        assert not merkle.verify_inclusion(leaves[i], i, n, forged, root)
    else:
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(root)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert not merkle.verify_inclusion(leaves[i], i, n, path, bytes(bad))
