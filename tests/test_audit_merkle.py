"""agt.audit.merkle against RFC 9162 (§2.1.1 tree head, §2.1.3 inclusion proofs).

The reference below is the RFC's recursive definition written out directly, independent of the iterative
code under test; the known answers are the Certificate Transparency test vectors (RFC 6962 test data).
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt.audit import merkle

# --- the RFC's definitions, written out ----------------------------------------------------------


def ref_leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def ref_node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, over raw entries."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return ref_leaf(d[0])
    k = ref_k(n)
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[tuple[bytes, str]]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, each sibling with the side it sits on."""
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return ref_path(m, d[:k]) + [(ref_mth(d[k:]), "right")]
    return ref_path(m - k, d[k:]) + [(ref_mth(d[:k]), "left")]


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def tree(n: int) -> tuple[list[bytes], list[bytes], bytes]:
    """(entries, leaf hashes, root) of a tree of n entries."""
    d = entries(n)
    leaves = [ref_leaf(x) for x in d]
    return d, leaves, ref_mth(d)


def ref_shape(m: int, n: int) -> list[str]:
    """The sides of PATH(m, D[n]) without hashing anything (the same recursion as ref_path)."""
    if n == 1:
        return []
    k = ref_k(n)
    return ref_shape(m, k) + ["right"] if m < k else ref_shape(m - k, n - k) + ["left"]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70]

# Certificate Transparency test vectors: the eight inputs, MTH of the first n, and two audit paths.
CT_INPUTS = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
             bytes(range(0x60, 0x70))]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_PATHS = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
}


# --- hashing primitives ----------------------------------------------------------------------------


def test_leaf_hash_prefixes_0x00():
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()


def test_node_hash_prefixes_0x01():
    a, b = b"a" * 32, b"b" * 32
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


# --- the tree head ---------------------------------------------------------------------------------


def test_root_of_the_empty_tree_is_the_hash_of_the_empty_string():
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 71))
def test_root_equals_the_recursive_rfc9162_mth(n):
    d, leaves, expected = tree(n)
    assert merkle.root(leaves) == expected


@pytest.mark.parametrize("n", sorted(CT_ROOTS))
def test_root_matches_the_certificate_transparency_vectors(n):
    assert merkle.root([ref_leaf(x) for x in CT_INPUTS[:n]]).hex() == CT_ROOTS[n]


def test_root_depends_on_leaf_order():
    _, leaves, _ = tree(5)
    assert merkle.root(leaves) != merkle.root([leaves[1], leaves[0], *leaves[2:]])


# --- inclusion paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("index,size", sorted(CT_PATHS))
def test_inclusion_path_matches_the_certificate_transparency_vectors(index, size):
    leaves = [ref_leaf(x) for x in CT_INPUTS[:size]]
    assert [h.hex() for h in merkle.inclusion_path(index, leaves)] == CT_PATHS[(index, size)]


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_path_equals_the_rfc9162_path_for_every_leaf(n):
    d, leaves, _ = tree(n)
    for i in range(n):
        assert merkle.inclusion_path(i, leaves) == [h for h, _ in ref_path(i, d)], f"leaf {i} of {n}"


@pytest.mark.parametrize("n", SIZES)
def test_every_leaf_verifies_with_its_path(n):
    _, leaves, root = tree(n)
    for i in range(n):
        assert merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_path(i, leaves), root), f"leaf {i} of {n}"


@pytest.mark.parametrize("index", [-1, 5, 6])
def test_inclusion_path_refuses_an_index_outside_the_tree(index):
    _, leaves, _ = tree(5)
    with pytest.raises(IndexError):
        merkle.inclusion_path(index, leaves)


# --- proofs that must fail -------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_a_proof_fails_for_a_wrong_leaf(n):
    _, leaves, root = tree(n)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        assert not merkle.verify_inclusion(ref_leaf(b"not in the tree"), i, n, path, root), f"leaf {i} of {n}"


@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 13, 16, 33])
def test_a_proof_fails_for_every_other_index(n):
    _, leaves, root = tree(n)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        for j in range(-1, n + 2):
            if j != i:
                assert not merkle.verify_inclusion(leaves[i], j, n, path, root), f"leaf {i} of {n} claimed as {j}"


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7, 8, 9, 16, 17, 33])
def test_a_proof_fails_for_a_size_that_moves_the_leaf(n):
    """RFC 9162 binds the size through the signed root, not the path: a path checks out for another size
    exactly when that size puts the leaf at the same depth on the same sides. Every other size must fail."""
    d, leaves, root = tree(n)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        assert ref_shape(i, n) == [side for _, side in ref_path(i, d)]
        for m in range(i + 1, 2 * n + 2):
            if m != n and ref_shape(i, m) != ref_shape(i, n):
                assert not merkle.verify_inclusion(leaves[i], i, m, path, root), f"leaf {i} of {n} claimed in {m}"


def test_a_proof_fails_for_the_last_leaf_claimed_in_a_bigger_tree():
    _, leaves, root = tree(5)
    assert not merkle.verify_inclusion(leaves[4], 4, 6, merkle.inclusion_path(4, leaves), root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17, 70])
def test_a_proof_fails_for_a_tampered_path_element(n):
    _, leaves, root = tree(n)
    for i in range(n):
        path = merkle.inclusion_path(i, leaves)
        for j in range(len(path)):
            bad = list(path)
            bad[j] = flip(bad[j])
            assert not merkle.verify_inclusion(leaves[i], i, n, bad, root), f"leaf {i} of {n}, element {j}"


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17, 70])
def test_a_proof_fails_for_a_wrong_root(n):
    _, leaves, root = tree(n)
    for i in range(n):
        assert not merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_path(i, leaves), flip(root))


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17])
def test_a_proof_fails_with_its_last_element_dropped(n):
    _, leaves, root = tree(n)
    for i in range(n):
        assert not merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_path(i, leaves)[:-1], root)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 17])
def test_a_proof_fails_with_an_element_appended(n):
    _, leaves, root = tree(n)
    for i in range(n):
        assert not merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_path(i, leaves) + [root], root)


def test_a_proof_fails_with_the_path_reversed():
    _, leaves, root = tree(8)
    assert not merkle.verify_inclusion(leaves[0], 0, 8, merkle.inclusion_path(0, leaves)[::-1], root)


def test_verify_inclusion_refuses_a_zero_size_tree():
    assert not merkle.verify_inclusion(ref_leaf(b"x"), 0, 0, [], hashlib.sha256(b"").digest())


# --- properties ------------------------------------------------------------------------------------


@st.composite
def size_and_index(draw, max_size: int = 200) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=max_size))
    return n, draw(st.integers(min_value=0, max_value=n - 1))


@settings(max_examples=100, deadline=None)
@given(size_and_index())
def test_property_root_equals_the_reference(si):
    n, _ = si
    d, leaves, root = tree(n)
    assert merkle.root(leaves) == root


@settings(max_examples=100, deadline=None)
@given(size_and_index())
def test_property_path_equals_the_reference_and_verifies(si):
    n, i = si
    d, leaves, root = tree(n)
    path = merkle.inclusion_path(i, leaves)
    assert path == [h for h, _ in ref_path(i, d)]
    assert merkle.verify_inclusion(leaves[i], i, n, path, root)


@settings(max_examples=100, deadline=None)
@given(size_and_index(), st.data())
def test_property_any_single_bit_flip_in_the_path_fails(si, data):
    n, i = si
    _, leaves, root = tree(n)
    path = merkle.inclusion_path(i, leaves)
    if not path:
        return  # a one-leaf tree has no path to tamper with
    j = data.draw(st.integers(0, len(path) - 1))
    byte = data.draw(st.integers(0, 31))
    bit = data.draw(st.integers(0, 7))
    bad = list(path)
    bad[j] = bad[j][:byte] + bytes([bad[j][byte] ^ (1 << bit)]) + bad[j][byte + 1:]
    assert not merkle.verify_inclusion(leaves[i], i, n, bad, root)


@settings(max_examples=100, deadline=None)
@given(size_and_index(), st.data())
def test_property_another_index_fails(si, data):
    n, i = si
    if n == 1:
        return  # nothing else to claim
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    _, leaves, root = tree(n)
    assert not merkle.verify_inclusion(leaves[i], j, n, merkle.inclusion_path(i, leaves), root)


@settings(max_examples=100, deadline=None)
@given(size_and_index())
def test_property_another_leaf_at_the_same_index_fails(si):
    n, i = si
    _, leaves, root = tree(n)
    assert not merkle.verify_inclusion(ref_leaf(b"forged"), i, n, merkle.inclusion_path(i, leaves), root)


# --- the incremental frontier ----------------------------------------------------------------------

FRONTIER_SIZES = [*range(0, 130), 255, 256, 257, 1000, 1023, 1024, 1025, 4095, 4096, 4097]


def hashed(n: int) -> list[bytes]:
    return [ref_leaf(e) for e in entries(n)]


@pytest.mark.parametrize("n", FRONTIER_SIZES)
def test_frontier_root_equals_the_full_recomputation_at_every_size(n):
    leaves = hashed(n)
    f = merkle.Frontier()
    for leaf in leaves:
        f.append(leaf)
    assert f.root() == merkle.root(leaves)


@pytest.mark.parametrize("n", range(0, 65))
def test_frontier_root_equals_the_rfc_definition(n):
    assert merkle.Frontier(hashed(n)).root() == ref_mth(entries(n))


def test_frontier_root_after_each_append_equals_the_root_of_that_prefix():
    leaves = hashed(300)
    f = merkle.Frontier()
    for i, leaf in enumerate(leaves):
        f.append(leaf)
        assert f.root() == merkle.root(leaves[: i + 1]), f"after {i + 1} leaves"


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9, 1000, 1024, 1025])
def test_frontier_keeps_one_node_per_set_bit_of_its_size(n):
    assert len(merkle.Frontier(hashed(n))._nodes) == bin(n).count("1")  # noqa: SLF001 - O(log n) memory is the point


@pytest.mark.parametrize("n", [0, 1, 5, 8, 100])
def test_frontier_size_counts_the_leaves(n):
    assert merkle.Frontier(hashed(n)).size == n


def test_roots_at_increasing_sizes_equal_the_full_recomputation():
    leaves = hashed(200)
    roots = merkle.Roots(leaves)
    for size in [0, 1, 2, 3, 50, 64, 65, 100, 100, 199, 200]:
        assert roots.at(size) == merkle.root(leaves[:size]), size


def test_roots_at_a_smaller_size_after_a_larger_one_is_still_the_root_of_that_prefix():
    leaves = hashed(100)
    roots = merkle.Roots(leaves)
    roots.at(90)
    assert roots.at(33) == merkle.root(leaves[:33])


def test_roots_refuses_a_size_beyond_the_leaves():
    with pytest.raises(IndexError):
        merkle.Roots(hashed(3)).at(4)
