"""scripts/bench_smt.py counts the nodes a root reaches by walking stored nodes; a stored internal
node carries its children's versions after the 65-byte preimage, so the walk must read the two
hashes, not the tail. (It read ``node[33:]``, a 48-byte key no store holds: the benchmark died.)"""

import random

from chainvoice import smt
from tests.support.scripts import load_script


def test_live_nodes_counts_every_leaf_and_internal_node_once():
    bench = load_script("bench_smt")
    rng = random.Random(7)
    store = smt.MemoryNodeStore()
    tree = smt.SparseMerkleTree(store)
    keys = [rng.randbytes(32) for _ in range(300)]
    root, _ = tree.update(smt.EMPTY, {k: smt.value_hash(k) for k in keys})
    # Overwrite half: the old nodes stay in the store but are no longer reachable.
    root, _ = tree.update(root, {k: smt.value_hash(k + b"2") for k in keys[:150]})
    live = bench._live_nodes(store, root)
    # A binary tree whose internal nodes all have two subtrees has 2n - 1 nodes; each extra
    # internal node with one EMPTY child (a long shared prefix) adds one more.
    assert live >= 2 * len(keys) - 1
    # The same count as a tree built afresh from the final values (the shape is canonical).
    fresh = smt.MemoryNodeStore()
    final = {k: smt.value_hash(k + b"2") for k in keys[:150]} | {k: smt.value_hash(k) for k in keys[150:]}
    fresh_root, _ = smt.SparseMerkleTree(fresh).update(smt.EMPTY, final)
    assert fresh_root == root and bench._live_nodes(fresh, fresh_root) == live
    assert bench._live_nodes(store, smt.EMPTY) == 0
