"""State tree (SPEC §5): hand-computed roots and proofs, deletion restoring the canonical shape,
storage behaviour, proof JSON, and the checks a verifier relies on."""

import hashlib

import pytest

from chainvoice import smt

Z = b"\x00" * 32


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(key: bytes, vh: bytes) -> bytes:
    return H(b"\x00" + key + vh)


def node(left: bytes, right: bytes) -> bytes:
    return H(b"\x01" + left + right)


def key_with_prefix(first_byte: int, last: int = 0) -> bytes:
    return bytes([first_byte]) + b"\x11" * 30 + bytes([last])


V1, V2, V3 = H(b"v1"), H(b"v2"), H(b"v3")

# Differ in bit 0.
K0 = key_with_prefix(0b0000_0000)
K1 = key_with_prefix(0b1000_0000)
# Share bits 0..2 (101), differ at bit 3.
KA = key_with_prefix(0b1010_0000)
KB = key_with_prefix(0b1011_0000)


class CountingStore(smt.MemoryNodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []
        self.put_calls = 0
        inner = self.nodes.get

        def get(h: bytes, at: bytes = b"") -> bytes | None:
            self.reads.append(h)
            return inner(h)

        self.get = get

    def put_many(self, nodes, at=b"") -> None:
        self.put_calls += 1
        super().put_many(nodes, at)


def new_tree() -> smt.SparseMerkleTree:
    return smt.SparseMerkleTree(smt.MemoryNodeStore())


# --- hashing and hand-computed roots -------------------------------------------------------------


def test_hash_functions_match_spec_preimages():
    assert smt.EMPTY == Z
    assert smt.leaf_hash(K0, V1) == leaf(K0, V1)
    assert smt.node_hash(V1, V2) == node(V1, V2)
    assert smt.value_hash(b"abc") == H(b"abc")
    assert smt.state_key(b"invoice/", b"24440000000000000001") == H(b"invoice/24440000000000000001")


def test_empty_tree_root_is_zero_and_every_key_absent():
    tree = new_tree()
    assert tree.get(Z, K0) is None
    proof = tree.prove(Z, K0)
    assert proof == smt.Proof((), None)
    assert smt.verify_absence(Z, K0, proof)
    assert not smt.verify_inclusion(Z, K0, V1, proof)


def test_one_key_root_is_its_leaf_hash():
    tree = new_tree()
    root, new_nodes = tree.update(Z, {K0: V1})
    assert root == leaf(K0, V1)
    assert new_nodes == {root: b"\x00" + K0 + V1}
    assert tree.get(root, K0) == V1
    assert tree.prove(root, K0) == smt.Proof((), None)
    # Any other key lands on the lone leaf: absence by the other leaf, no siblings.
    proof = tree.prove(root, K1)
    assert proof == smt.Proof((), (K0, V1))
    assert smt.verify_absence(root, K1, proof)


def test_keys_differing_in_bit_0_put_the_0_bit_leaf_on_the_left():
    for order in ([(K0, V1), (K1, V2)], [(K1, V2), (K0, V1)]):
        tree = new_tree()
        root = Z
        for k, v in order:
            root, _ = tree.update(root, {k: v})
        assert root == node(leaf(K0, V1), leaf(K1, V2))
        assert tree.prove(root, K0) == smt.Proof((leaf(K1, V2),), None)
        assert tree.prove(root, K1) == smt.Proof((leaf(K0, V1),), None)


def test_shared_3_bit_prefix_gives_three_single_child_levels_then_the_split():
    tree = new_tree()
    root, new_nodes = tree.update(Z, {KA: V1, KB: V2})
    la, lb = leaf(KA, V1), leaf(KB, V2)
    split = node(la, lb)  # depth 3: bit 3 is 0 for KA
    d2 = node(Z, split)  # bit 2 = 1
    d1 = node(d2, Z)  # bit 1 = 0
    d0 = node(Z, d1)  # bit 0 = 1
    assert root == d0
    # Entries: the leaves, and the internal nodes at depths that are multiples of
    # LEVELS_PER_ENTRY, each holding the internal nodes of the levels below it down to the next
    # such depth (so one read finds several levels).
    depths = {d0: 0, d1: 1, d2: 2, split: 3}
    assert set(new_nodes) == {la, lb} | {h for h, d in depths.items() if d % smt.LEVELS_PER_ENTRY == 0}
    for h, raw in new_nodes.items():
        assert H(raw[:65]) == h
    assert new_nodes[la] == b"\x00" + KA + V1
    everything = b"".join(new_nodes.values())
    for h in depths:
        # Each internal node's stored bytes, its preimage and then its children's versions, are
        # in exactly one entry.
        preimage = {d0: b"\x01" + Z + d1, d1: b"\x01" + d2 + Z, d2: b"\x01" + Z + split, split: b"\x01" + la + lb}[h]
        assert everything.count(preimage) == 1
    at = everything.index(b"\x01" + la + lb)
    assert everything[at + 65:at + 81] == smt.version(0) * 2
    assert tree.prove(root, KA) == smt.Proof((Z, Z, Z, lb), None)
    assert tree.prove(root, KB) == smt.Proof((Z, Z, Z, la), None)
    assert smt.verify_inclusion(root, KA, V1, tree.prove(root, KA))

    # Absent key going left at bit 0: the slot at depth 1 is EMPTY.
    k_empty = key_with_prefix(0b0100_0000)
    p = tree.prove(root, k_empty)
    assert p == smt.Proof((d1,), None)
    assert smt.verify_absence(root, k_empty, p)
    # Absent key leaving the shared chain at bit 2: EMPTY slot at depth 3.
    k_empty3 = key_with_prefix(0b1000_0000)
    p = tree.prove(root, k_empty3)
    assert p == smt.Proof((Z, Z, split), None)
    assert smt.verify_absence(root, k_empty3, p)
    # Absent key following KA's path to its leaf at depth 4: absence by the other leaf.
    k_other = key_with_prefix(0b1010_1000)
    p = tree.prove(root, k_other)
    assert p == smt.Proof((Z, Z, Z, lb), (KA, V1))
    assert smt.verify_absence(root, k_other, p)
    assert tree.get(root, k_other) is None


def test_keys_differing_only_in_the_last_bit_split_at_depth_255():
    ka = b"\x5a" * 31 + b"\x00"
    kb = b"\x5a" * 31 + b"\x01"
    tree = new_tree()
    root, _ = tree.update(Z, {ka: V1, kb: V2})
    expect = node(leaf(ka, V1), leaf(kb, V2))
    for i in range(254, -1, -1):
        b = (ka[i // 8] >> (7 - i % 8)) & 1
        expect = node(Z, expect) if b else node(expect, Z)
    assert root == expect
    proof = tree.prove(root, ka)
    assert len(proof.siblings) == 256
    assert smt.verify_inclusion(root, ka, V1, proof)
    assert smt.verify_inclusion(root, kb, V2, tree.prove(root, kb))


# --- deletion and canonical shape ----------------------------------------------------------------


def test_deleting_one_of_two_deep_keys_lifts_the_other_back_to_the_root():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    root, _ = tree.update(root, {KB: None})
    assert root == leaf(KA, V1)
    root, _ = tree.update(root, {KA: None})
    assert root == Z


def test_deleting_lifts_a_leaf_past_several_empty_levels_inside_a_bigger_tree():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2, K0: V3})
    root, _ = tree.update(root, {KA: None})
    # KB is now alone on the 1-side of bit 0.
    assert root == node(leaf(K0, V3), leaf(KB, V2))
    root2, _ = tree.update(Z, {K0: V3, KB: V2})
    assert root == root2


def test_deleting_absent_keys_and_rewriting_same_value_change_nothing():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    assert tree.update(root, {K0: None})[0] == root
    assert tree.update(root, {key_with_prefix(0b1010_1000): None})[0] == root
    assert tree.update(root, {KA: V1}) == (root, {})  # no node is rewritten
    assert tree.update(root, {K0: None, KB: V2}) == (root, {})
    assert tree.update(root, {})[0] == root


def test_batch_with_deletes_of_all_then_inserts_matches_fresh_tree():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2, K0: V3})
    root, _ = tree.update(root, {KA: None, KB: None, K0: None, K1: V1})
    assert root == leaf(K1, V1)


def test_update_into_a_leaf_slot_with_many_writes_keeps_or_replaces_the_leaf():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1})
    # Several writes arriving at the lone leaf: it is kept and joined by the new ones.
    root, _ = tree.update(root, {KB: V2, K0: V3})
    fresh, _ = new_tree().update(Z, {KA: V1, KB: V2, K0: V3})
    assert root == fresh
    root1, _ = new_tree().update(Z, {KA: V1})
    root1, _ = tree.update(root1, {KA: V2, KB: V2})
    assert root1 == new_tree().update(Z, {KA: V2, KB: V2})[0]


# --- storage -------------------------------------------------------------------------------------


def test_update_puts_new_nodes_once_and_they_are_content_addressed():
    store = CountingStore()
    tree = smt.SparseMerkleTree(store)
    root, new_nodes = tree.update(Z, {KA: V1, KB: V2, K0: V3})
    assert store.put_calls == 1
    assert all(store.nodes[h] == raw and H(raw[:65]) == h for h, raw in new_nodes.items())
    root2, _ = tree.update(root, {K1: V1, KA: V2})
    assert store.put_calls == 2
    assert tree.get(root2, K1) == V1 and tree.get(root2, KA) == V2


def test_batched_update_reads_each_old_node_at_most_once():
    store = CountingStore()
    tree = smt.SparseMerkleTree(store)
    keys = [H(b"k%d" % i) for i in range(300)]
    root, _ = tree.update(Z, {k: V1 for k in keys})
    writes = {k: V2 for k in keys[::3]}
    per_key_walks = sum(len(tree.prove(root, k).siblings) + 1 for k in writes)
    store.reads.clear()
    tree.update(root, writes)
    # One pass shares the upper levels: no node is read twice, and the total is well below one
    # separate walk per write (what a LevelDB-backed store would pay for per get).
    assert len(store.reads) == len(set(store.reads))
    assert len(store.reads) < 0.75 * per_key_walks


def test_a_read_fetches_one_entry_per_levels_per_entry_levels_of_the_path():
    # The store's entries hold LEVELS_PER_ENTRY levels each: walking to a leaf at depth D reads
    # the entries rooted at depths 0, L, 2L, ... above it, and the leaf's own.
    store = CountingStore()
    tree = smt.SparseMerkleTree(store)
    keys = [H(b"k%d" % i) for i in range(2_000)]
    root, _ = tree.update(Z, {k: V1 for k in keys})
    levels = smt.LEVELS_PER_ENTRY
    deepest = 0
    for k in keys[:200] + [H(b"absent%d" % i) for i in range(50)]:
        depth = len(tree.prove(root, k).siblings)
        deepest = max(deepest, depth)
        store.reads.clear()
        tree.get(root, k)
        internal = (depth - 1) // levels + 1 if depth else 0
        assert len(store.reads) <= internal + 1
        assert len(store.reads) >= internal
    assert deepest > 2 * levels  # the walks did cross several entries
    # Every read names an entry the store holds: no inner node is ever looked up on its own.
    store.reads.clear()
    tree.update(root, {k: V2 for k in keys[::7]})
    assert store.reads and all(h in store.nodes for h in store.reads)


def test_old_roots_stay_readable_and_provable():
    tree = new_tree()
    r1, _ = tree.update(Z, {KA: V1})
    r2, _ = tree.update(r1, {KB: V2, KA: V3})
    r3, _ = tree.update(r2, {KA: None})
    assert tree.get(r1, KA) == V1 and tree.get(r1, KB) is None
    assert tree.get(r2, KA) == V3 and tree.get(r2, KB) == V2
    assert tree.get(r3, KA) is None
    assert smt.verify_inclusion(r1, KA, V1, tree.prove(r1, KA))
    assert smt.verify_absence(r1, KB, tree.prove(r1, KB))
    assert smt.verify_inclusion(r2, KA, V3, tree.prove(r2, KA))
    assert smt.verify_absence(r3, KA, tree.prove(r3, KA))


class VersionedStore:
    """Like the node's store: a node is found only under the version that stored it."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[bytes, bytes], bytes] = {}

    def get(self, h: bytes, at: bytes) -> bytes | None:
        return self.nodes.get((at, h))

    def put_many(self, nodes, at: bytes) -> None:
        self.nodes.update(((at, h), raw) for h, raw in nodes.items())


def test_nodes_are_found_by_the_version_that_wrote_them_and_the_root_is_at_every_version():
    store = VersionedStore()
    tree = smt.SparseMerkleTree(store)
    r1, n1 = tree.update(Z, {KA: V1, K0: V2}, at=1)
    assert {at for at, _ in store.nodes} == {smt.version(1)}
    r2, n2 = tree.update(r1, {KB: V3}, at=2, root_at=1)
    # Only the path to KB is new; the K0 leaf is still read where version 1 put it.
    assert leaf(K0, V2) not in n2 and (smt.version(1), leaf(K0, V2)) in store.nodes
    assert tree.get(r2, K0, 2) == V2 and tree.get(r2, KB, 2) == V3 and tree.get(r1, KB, 1) is None
    # No change: the root is stored again at the new version, so version 3's root is at 3.
    r3, n3 = tree.update(r2, {}, at=3, root_at=2)
    assert r3 == r2 and set(n3) == {r2}
    # Deletes that leave one old leaf on top: that leaf becomes version 4's root, stored at 4.
    r4, n4 = tree.update(r3, {KA: None, KB: None}, at=4, root_at=3)
    assert r4 == leaf(K0, V2) and n4[r4] == b"\x00" + K0 + V2
    assert tree.get(r4, K0, 4) == V2
    with pytest.raises(smt.MissingNodeError):
        tree.get(r2, K0, 1)  # the wrong version does not find the root


def test_unknown_root_raises_missing_node():
    tree = new_tree()
    with pytest.raises(smt.MissingNodeError):
        tree.get(H(b"nowhere"), KA)
    with pytest.raises(smt.MissingNodeError):
        tree.update(H(b"nowhere"), {KA: V1})


@pytest.mark.parametrize("bad", [b"short", b"\x00" * 33, "00" * 32, None])
def test_malformed_keys_and_values_are_refused(bad):
    tree = new_tree()
    with pytest.raises(ValueError):
        tree.update(Z, {bad: V1})
    with pytest.raises(ValueError):
        tree.get(Z, bad)
    if bad is not None:
        with pytest.raises(ValueError):
            tree.update(Z, {KA: bad})


# --- verification --------------------------------------------------------------------------------


def test_inclusion_proof_cannot_be_recast_as_absence_by_naming_the_key_as_other_leaf():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    proof = tree.prove(root, KA)
    forged = smt.Proof(proof.siblings, (KA, V1))
    assert not smt.verify_absence(root, KA, forged)
    assert not smt.verify_absence(root, KA, proof)
    assert not smt.verify_inclusion(root, KA, V1, forged)


def test_absence_by_other_leaf_requires_the_leaf_to_share_the_path_prefix():
    # A dishonest root with leaf(K1) on the 0-side: without the prefix check, K1's leaf would
    # "prove" the absence of a key whose path goes left.
    k_left = key_with_prefix(0b0000_0000, last=7)
    root = node(leaf(K1, V1), leaf(K0, V2))
    forged = smt.Proof((leaf(K0, V2),), (K1, V1))
    assert not smt.verify_absence(root, k_left, forged)
    # The same shape with a correctly placed leaf is accepted.
    honest_root = node(leaf(K0, V2), leaf(K1, V1))
    k_right = key_with_prefix(0b1000_0000, last=7)
    assert smt.verify_absence(honest_root, k_right, smt.Proof((leaf(K0, V2),), (K1, V1)))


def test_proofs_with_a_trailing_empty_sibling_are_refused():
    # Honest paths end below a node holding >= 2 leaves, so the last sibling is never EMPTY. These
    # proofs fold correctly to roots no honest tree has; the verifier refuses them anyway.
    non_canonical_root = node(leaf(K0, V1), Z)
    assert not smt.verify_inclusion(non_canonical_root, K0, V1, smt.Proof((Z,), None))
    assert not smt.verify_absence(node(Z, Z), K0, smt.Proof((Z,), None))
    k = key_with_prefix(0b0000_0000, last=9)
    assert not smt.verify_absence(non_canonical_root, k, smt.Proof((Z,), (K0, V1)))
    # EMPTY siblings higher up are fine (a shared-prefix chain).
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    assert smt.verify_inclusion(root, KA, V1, smt.Proof((Z, Z, Z, leaf(KB, V2)), None))


def test_verifiers_return_false_on_malformed_inputs():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    p = tree.prove(root, KA)
    assert not smt.verify_inclusion(root, KA[:31], V1, p)
    assert not smt.verify_inclusion(root, KA, V1[:31], p)
    assert not smt.verify_inclusion(root[:31], KA, V1, p)
    assert not smt.verify_inclusion(root, KA, V1, smt.Proof(p.siblings[:-1] + (b"x",), None))
    assert not smt.verify_inclusion(root, KA, V1, smt.Proof(p.siblings * 100, None))
    assert not smt.verify_absence(root, K0[:5], tree.prove(root, K0))


# --- JSON ----------------------------------------------------------------------------------------


def test_proof_json_round_trip_and_exact_shape():
    tree = new_tree()
    root, _ = tree.update(Z, {KA: V1, KB: V2})
    incl = tree.prove(root, KA)
    absent = tree.prove(root, key_with_prefix(0b1010_1000))
    assert incl.to_json() == {"siblings": [Z.hex()] * 3 + [leaf(KB, V2).hex()], "other_leaf": None}
    assert absent.to_json()["other_leaf"] == {"key": KA.hex(), "value_hash": V1.hex()}
    for p in (incl, absent, smt.Proof((), None)):
        assert smt.Proof.from_json(p.to_json()) == p


GOOD_SIB = "ab" * 32


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        "proof",
        {},
        {"siblings": []},
        {"other_leaf": None},
        {"siblings": [], "other_leaf": None, "extra": 1},
        {"siblings": "ab" * 32, "other_leaf": None},
        {"siblings": [GOOD_SIB[:-2]], "other_leaf": None},
        {"siblings": [GOOD_SIB + "ab"], "other_leaf": None},
        {"siblings": ["zz" * 32], "other_leaf": None},
        {"siblings": [GOOD_SIB.upper()], "other_leaf": None},
        {"siblings": [1], "other_leaf": None},
        {"siblings": [GOOD_SIB] * 257, "other_leaf": None},
        {"siblings": [], "other_leaf": GOOD_SIB},
        {"siblings": [], "other_leaf": {"key": GOOD_SIB}},
        {"siblings": [], "other_leaf": {"key": GOOD_SIB, "value_hash": "ab"}},
        {"siblings": [], "other_leaf": {"key": GOOD_SIB, "value_hash": GOOD_SIB, "x": 1}},
        {"siblings": [], "other_leaf": [GOOD_SIB, GOOD_SIB]},
    ],
)
def test_from_json_rejects_malformed_input(bad):
    with pytest.raises(smt.ProofFormatError):
        smt.Proof.from_json(bad)


def test_proof_format_error_is_a_value_error_with_a_message():
    with pytest.raises(ValueError, match="siblings"):
        smt.Proof.from_json({"siblings": ["00"], "other_leaf": None})
