"""RFC 9162 Merkle tree against the RFC 6962 / CT reference vectors."""

import hashlib

import pytest

from chainvoice import merkle

# The Certificate Transparency reference leaves and published tree heads for sizes 0..8.
LEAVES = [bytes.fromhex(h) for h in [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Published inclusion paths in the size-8 tree.
PATHS = {
    0: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    5: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}


@pytest.mark.parametrize("size", range(9))
def test_root_matches_published_tree_head(size):
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size]


def test_empty_tree_is_sha256_of_nothing():
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("index", sorted(PATHS))
def test_inclusion_path_matches_published(index):
    path = merkle.inclusion_proof(LEAVES, index)
    assert [p.hex() for p in path] == PATHS[index]
    assert merkle.verify_inclusion(LEAVES[index], index, 8, path, bytes.fromhex(ROOTS[8]))


def _recursive_mth(leaves):
    """RFC 9162 §2.1.1 written literally, as an independent check of the iterative version."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _recursive_mth(leaves[:k]) + _recursive_mth(leaves[k:])).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 9, 16, 17, 31, 33, 100])
def test_iterative_root_equals_rfc_recursion(size):
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    assert merkle.root(leaves) == _recursive_mth(leaves)


def test_wrong_index_or_size_fails():
    path = merkle.inclusion_proof(LEAVES, 5)
    root8 = bytes.fromhex(ROOTS[8])
    assert not merkle.verify_inclusion(LEAVES[5], 4, 8, path, root8)
    assert not merkle.verify_inclusion(LEAVES[5], 5, 6, path, root8)
    assert not merkle.verify_inclusion(LEAVES[5], 5, 8, path[:-1], root8)
    assert not merkle.verify_inclusion(LEAVES[5], 5, 8, path + [path[0]], root8)
    assert not merkle.verify_inclusion(LEAVES[5], 8, 8, path, root8)
    with pytest.raises(IndexError):
        merkle.inclusion_proof(LEAVES, 8)
