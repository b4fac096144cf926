"""State tree properties (SPEC §5), against an independent reference written from the definition:

- the root equals the root by definition of the final key -> value_hash set;
- it does not depend on insertion order or on how writes (updates, deletes) are split into batches;
- proofs are byte for byte the reference proofs, and verify: inclusion for every present key,
  absence for absent keys, of both kinds (empty slot and other leaf);
- an old root stays provable after later updates;
- any tampering (value, sibling, key, root, sibling count, proof kind) makes verification fail;
- Proof.from_json accepts exactly what to_json writes and raises ProofFormatError otherwise.
"""

import hashlib
from collections import Counter

from hypothesis import given, settings, strategies as st

from chainvoice import smt

EMPTY = b"\x00" * 32


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- reference, straight from the definition -----------------------------------------------------


def bit(key: bytes, i: int) -> int:
    return (key[i // 8] >> (7 - i % 8)) & 1


def flip(key: bytes, i: int) -> bytes:
    raw = bytearray(key)
    raw[i // 8] ^= 1 << (7 - i % 8)
    return bytes(raw)


def ref_root(items: dict[bytes, bytes], depth: int = 0, memo: dict | None = None) -> bytes:
    """Empty: zero; one leaf: its leaf hash; else the node over the two halves by bit `depth`.

    ``memo`` (optional) remembers subtrees by (depth, key set) for one fixed ``items`` mapping, so
    that proving every key of a tree does not recompute the whole tree per proof."""
    if not items:
        return EMPTY
    if len(items) == 1:
        ((k, v),) = items.items()
        return H(b"\x00" + k + v)
    if memo is not None:
        tag = (depth, frozenset(items))
        if tag in memo:
            return memo[tag]
    left = {k: v for k, v in items.items() if bit(k, depth) == 0}
    right = {k: v for k, v in items.items() if bit(k, depth) == 1}
    h = H(b"\x01" + ref_root(left, depth + 1, memo) + ref_root(right, depth + 1, memo))
    if memo is not None:
        memo[tag] = h
    return h


def ref_prove(items: dict[bytes, bytes], key: bytes, memo: dict | None = None) -> smt.Proof:
    """Walk the definition: at each depth the sibling is the root of the keys on the other side;
    stop when at most one key is left on the key's side."""
    siblings = []
    depth = 0
    sub = items
    while len(sub) >= 2:
        same = {k: v for k, v in sub.items() if bit(k, depth) == bit(key, depth)}
        other = {k: v for k, v in sub.items() if bit(k, depth) != bit(key, depth)}
        siblings.append(ref_root(other, depth + 1, memo))
        sub = same
        depth += 1
    other_leaf = None
    if len(sub) == 1:
        ((k, v),) = sub.items()
        if k != key:
            other_leaf = (k, v)
    return smt.Proof(tuple(siblings), other_leaf)


def ref_fold(root: bytes, key: bytes, start: bytes, siblings) -> bool:
    h = start
    for i in range(len(siblings) - 1, -1, -1):
        h = H(b"\x01" + siblings[i] + h) if bit(key, i) else H(b"\x01" + h + siblings[i])
    return h == root


# --- strategies ----------------------------------------------------------------------------------

keys32 = st.binary(min_size=32, max_size=32)
hashes32 = st.binary(min_size=32, max_size=32)


@st.composite
def key_sets(draw, max_size: int = 30) -> list[bytes]:
    """Random keys plus adversarial ones: a late bit of another key flipped (shares >= 200 bits),
    and keys sharing a long prefix with another (shares a random number of leading bytes)."""
    keys = draw(st.lists(keys32, min_size=1, max_size=max_size, unique=True))
    n_flips = draw(st.integers(0, 8))
    for _ in range(n_flips):
        base = draw(st.sampled_from(keys))
        keys.append(flip(base, draw(st.integers(200, 255))))
    n_prefix = draw(st.integers(0, 4))
    for _ in range(n_prefix):
        base = draw(st.sampled_from(keys))
        shared = draw(st.integers(1, 31))
        keys.append(base[:shared] + draw(st.binary(min_size=32 - shared, max_size=32 - shared)))
    return list(dict.fromkeys(keys))


@st.composite
def key_values(draw, max_size: int = 30) -> dict[bytes, bytes]:
    keys = draw(key_sets(max_size))
    return {k: draw(hashes32) for k in keys}


def absent_candidates(tree: smt.SparseMerkleTree, root: bytes, items: dict[bytes, bytes], extra):
    """Absent keys that exercise both absence kinds: late-bit neighbours of present keys land on
    their leaf (other-leaf kind); a present key with the bit under an EMPTY sibling flipped lands
    in that empty slot (empty kind)."""
    out = list(extra)
    for k in items:
        out.append(flip(k, 255))
        proof = tree.prove(root, k)
        for i, s in enumerate(proof.siblings):
            if s == EMPTY:
                out.append(flip(k, i))
                break
    return [k for k in dict.fromkeys(out) if k not in items]


def build(items: dict[bytes, bytes]) -> tuple[smt.SparseMerkleTree, bytes]:
    tree = smt.SparseMerkleTree(smt.MemoryNodeStore())
    root, _ = tree.update(EMPTY, items)
    return tree, root


# --- root ----------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(items=key_values())
def test_root_equals_the_reference_root_by_definition(items):
    _, root = build(items)
    assert root == ref_root(items)


@settings(max_examples=120, deadline=None)
@given(
    keys=key_sets(max_size=20),
    data=st.data(),
)
def test_root_independent_of_insertion_order_and_batch_boundaries(keys, data):
    # A random sequence of inserts, updates and deletes over `keys`, cut into random batches.
    ops = data.draw(
        st.lists(
            st.tuples(st.sampled_from(keys), st.one_of(st.none(), hashes32)),
            min_size=1,
            max_size=60,
        ),
        label="ops",
    )
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(ops)), max_size=10), label="cuts")))
    tree = smt.SparseMerkleTree(smt.MemoryNodeStore())
    root = EMPTY
    final: dict[bytes, bytes] = {}
    bounds = [0] + cuts + [len(ops)]
    for a, b in zip(bounds, bounds[1:]):
        batch: dict[bytes, bytes | None] = {}
        for k, v in ops[a:b]:
            batch[k] = v  # within a block, the last write to a key wins
            if v is None:
                final.pop(k, None)
            else:
                final[k] = v
        root, _ = tree.update(root, batch)
    assert root == ref_root(final)
    # The same final set, written in one batch, or one key at a time in another order.
    assert build(final)[1] == root
    order = data.draw(st.permutations(list(final)), label="order")
    one_by_one = EMPTY
    for k in order:
        one_by_one, _ = tree.update(one_by_one, {k: final[k]})
    assert one_by_one == root


# --- proofs --------------------------------------------------------------------------------------


def test_proofs_match_the_reference_and_verify_with_both_absence_kinds():
    kinds: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None)
    @given(items=key_values(), extra=st.lists(keys32, max_size=5))
    def check(items, extra):
        tree, root = build(items)
        memo: dict = {}
        assert root == ref_root(items, 0, memo)
        for k, v in items.items():
            proof = tree.prove(root, k)
            assert proof == ref_prove(items, k, memo)
            assert tree.get(root, k) == v
            assert smt.verify_inclusion(root, k, v, proof)
            assert ref_fold(root, k, H(b"\x00" + k + v), proof.siblings)
            assert not smt.verify_absence(root, k, proof)
        for k in absent_candidates(tree, root, items, extra):
            proof = tree.prove(root, k)
            assert proof == ref_prove(items, k, memo)
            assert tree.get(root, k) is None
            assert smt.verify_absence(root, k, proof)
            kinds["other_leaf" if proof.other_leaf else "empty"] += 1
            for v in (EMPTY, H(b"any value")):
                assert not smt.verify_inclusion(root, k, v, proof)

    check()
    assert kinds["empty"] > 0 and kinds["other_leaf"] > 0, kinds


# Two to six blocks of writes (a value hash, or None to delete), as a node applies them.
update_batches = st.lists(
    st.dictionaries(keys32, st.one_of(st.none(), hashes32), max_size=12), min_size=2, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(batches=update_batches, data=st.data())
def test_old_roots_stay_provable_after_later_updates(batches, data):
    # Nodes are found only under the version that stored them, as in the node's store: every
    # child version written into a parent must be right for these walks to succeed.
    stored: dict[tuple[bytes, bytes], bytes] = {}
    store = type("VersionedStore", (), {
        "get": staticmethod(lambda h, at: stored.get((at, h))),
        "put_many": staticmethod(lambda nodes, at: stored.update(((at, h), b) for h, b in nodes.items())),
    })()
    tree = smt.SparseMerkleTree(store)
    root = EMPTY
    current: dict[bytes, bytes] = {}
    history = []
    seen: set[bytes] = set()
    for batch in batches:
        # Touch earlier keys too, so later batches overwrite and delete what old roots hold.
        if seen:
            for k in data.draw(st.lists(st.sampled_from(sorted(seen)), max_size=4)):
                batch[k] = data.draw(st.one_of(st.none(), hashes32))
        at = len(history) + 1
        root, _ = tree.update(root, batch, at=at, root_at=at - 1)
        for k, v in batch.items():
            seen.add(k)
            if v is None:
                current.pop(k, None)
            else:
                current[k] = v
        history.append((root, dict(current)))
    for at, (old_root, snapshot) in enumerate(history, 1):
        assert old_root == ref_root(snapshot)
        for k in seen:
            proof = tree.prove(old_root, k, at)
            if k in snapshot:
                assert tree.get(old_root, k, at) == snapshot[k]
                assert smt.verify_inclusion(old_root, k, snapshot[k], proof)
            else:
                assert tree.get(old_root, k, at) is None
                assert smt.verify_absence(old_root, k, proof)


@settings(max_examples=60, deadline=None)
@given(batches=update_batches, data=st.data())
def test_nodes_read_from_a_hot_mapping_give_the_same_tree_and_valid_versions(batches, data):
    # A store may offer ``hot``: nodes by hash alone, read before ``get``. Whatever subset of
    # stored copies it holds, and whichever version's copy, the roots are the same, and the child
    # versions written into new nodes still find every node where the store keeps it.
    def versioned(hot):
        stored: dict[tuple[bytes, bytes], bytes] = {}
        attrs = {"get": staticmethod(lambda h, at: stored.get((at, h))),
                 "put_many": staticmethod(lambda nodes, at: stored.update(((at, h), b) for h, b in nodes.items()))}
        if hot is not None:
            attrs["hot"] = hot
        return stored, smt.SparseMerkleTree(type("Store", (), attrs)())

    hot: dict[bytes, bytes] = {}
    plain_stored, plain = versioned(None)
    hot_stored, with_hot = versioned(hot)
    root = hot_root = EMPTY
    history = []
    current: dict[bytes, bytes] = {}
    for at, batch in enumerate(batches, 1):
        root, _ = plain.update(root, batch, at=at, root_at=at - 1)
        hot_root, _ = with_hot.update(hot_root, batch, at=at, root_at=at - 1)
        assert hot_root == root
        # The hot mapping now holds some stored copies, of any version, and drops others.
        for (_, h), b in sorted(hot_stored.items()):
            if data.draw(st.booleans()):
                hot[h] = b
            elif data.draw(st.booleans()):
                hot.pop(h, None)
        for k, v in batch.items():
            if v is None:
                current.pop(k, None)
            else:
                current[k] = v
        history.append((root, dict(current)))
    walker = smt.SparseMerkleTree(type("Walk", (), {"get": staticmethod(lambda h, at: hot_stored.get((at, h)))})())
    for at, (old_root, snapshot) in enumerate(history, 1):
        assert old_root == ref_root(snapshot)
        for k, v in snapshot.items():
            assert walker.get(old_root, k, at) == v


# --- tampering -----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(items=key_values(max_size=20), data=st.data())
def test_any_tampering_with_an_inclusion_proof_fails(items, data):
    tree, root = build(items)
    key = data.draw(st.sampled_from(sorted(items)), label="key")
    vh = items[key]
    proof = tree.prove(root, key)
    assert smt.verify_inclusion(root, key, vh, proof)
    targets = ["value", "key", "root", "extra", "cross"] + (["sibling", "missing"] if proof.siblings else [])
    target = data.draw(st.sampled_from(targets), label="target")
    b = data.draw(st.integers(0, 255), label="bit")
    if target == "value":
        assert not smt.verify_inclusion(root, key, flip(vh, b), proof)
    elif target == "key":
        assert not smt.verify_inclusion(root, flip(key, b), vh, proof)
    elif target == "root":
        assert not smt.verify_inclusion(flip(root, b), key, vh, proof)
    elif target == "sibling":
        i = data.draw(st.integers(0, len(proof.siblings) - 1), label="i")
        sibs = list(proof.siblings)
        sibs[i] = flip(sibs[i], b)
        assert not smt.verify_inclusion(root, key, vh, smt.Proof(tuple(sibs), None))
    elif target == "extra":
        s = data.draw(st.one_of(st.just(EMPTY), hashes32), label="extra sibling")
        at = data.draw(st.integers(0, len(proof.siblings)), label="at")
        sibs = proof.siblings[:at] + (s,) + proof.siblings[at:]
        assert not smt.verify_inclusion(root, key, vh, smt.Proof(sibs, None))
    elif target == "missing":
        at = data.draw(st.integers(0, len(proof.siblings) - 1), label="at")
        sibs = proof.siblings[:at] + proof.siblings[at + 1:]
        assert not smt.verify_inclusion(root, key, vh, smt.Proof(sibs, None))
    else:  # an inclusion proof is not an absence proof, in either form
        assert not smt.verify_absence(root, key, proof)
        assert not smt.verify_absence(root, key, smt.Proof(proof.siblings, (key, vh)))


@settings(max_examples=200, deadline=None)
@given(items=key_values(max_size=20), extra=st.lists(keys32, max_size=3), data=st.data())
def test_any_tampering_with_an_absence_proof_fails(items, extra, data):
    tree, root = build(items)
    candidates = absent_candidates(tree, root, items, extra)
    key = data.draw(st.sampled_from(candidates), label="key")
    proof = tree.prove(root, key)
    assert smt.verify_absence(root, key, proof)
    targets = ["root", "extra", "cross"]
    if proof.siblings:
        targets += ["sibling", "missing", "key"]
    if proof.other_leaf:
        targets += ["other_key", "other_value", "drop_other"]
    target = data.draw(st.sampled_from(targets), label="target")
    b = data.draw(st.integers(0, 255), label="bit")
    sibs = proof.siblings
    if target == "root":
        assert not smt.verify_absence(flip(root, b), key, proof)
    elif target == "key":
        # A bit on the proven path moves the key elsewhere; later bits may still be absent.
        i = data.draw(st.integers(0, len(sibs) - 1), label="path bit")
        assert not smt.verify_absence(root, flip(key, i), proof)
    elif target == "sibling":
        i = data.draw(st.integers(0, len(sibs) - 1), label="i")
        forged = sibs[:i] + (flip(sibs[i], b),) + sibs[i + 1:]
        assert not smt.verify_absence(root, key, smt.Proof(forged, proof.other_leaf))
    elif target == "extra":
        s = data.draw(st.one_of(st.just(EMPTY), hashes32), label="extra sibling")
        at = data.draw(st.integers(0, len(sibs)), label="at")
        forged = sibs[:at] + (s,) + sibs[at:]
        assert not smt.verify_absence(root, key, smt.Proof(forged, proof.other_leaf))
    elif target == "missing":
        at = data.draw(st.integers(0, len(sibs) - 1), label="at")
        forged = sibs[:at] + sibs[at + 1:]
        assert not smt.verify_absence(root, key, smt.Proof(forged, proof.other_leaf))
    elif target == "other_key":
        k2, v2 = proof.other_leaf
        assert not smt.verify_absence(root, key, smt.Proof(sibs, (flip(k2, b), v2)))
    elif target == "other_value":
        k2, v2 = proof.other_leaf
        assert not smt.verify_absence(root, key, smt.Proof(sibs, (k2, flip(v2, b))))
    elif target == "drop_other":
        assert not smt.verify_absence(root, key, smt.Proof(sibs, None))
    else:  # an absence proof is not an inclusion proof, whatever value is claimed
        for v in ([proof.other_leaf[1]] if proof.other_leaf else []) + [EMPTY, H(b"v")]:
            assert not smt.verify_inclusion(root, key, v, proof)
            assert not smt.verify_inclusion(root, key, v, smt.Proof(sibs, None))


# --- JSON ----------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(items=key_values(max_size=15), extra=st.lists(keys32, max_size=3))
def test_proof_json_round_trips(items, extra):
    tree, root = build(items)
    for k in list(items) + absent_candidates(tree, root, items, extra):
        proof = tree.prove(root, k)
        assert smt.Proof.from_json(proof.to_json()) == proof


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70) | st.sampled_from(["ab" * 32, "AB" * 32]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["siblings", "other_leaf", "key", "value_hash", "x"]), inner, max_size=4
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(d=json_values)
def test_from_json_either_parses_or_raises_proof_format_error(d):
    try:
        proof = smt.Proof.from_json(d)
    except smt.ProofFormatError:
        return
    # Whatever it accepted is a well-formed proof that writes back to the same JSON.
    assert proof.to_json() == d
