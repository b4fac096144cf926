"""Quorums: collecting votes, checking prepared proofs and VIEW-CHANGEs, forming commit
certificates, and the NEW-VIEW rule (which block the next height must carry after a view change).

Quorum arithmetic (PBFT §4.2): n = 3f+1; any two sets of 2f+1 replicas share at least f+1, so at
least one honest replica. Prepared = a pre-prepare plus 2f prepares from *other* replicas (the
primary's pre-prepare stands for its prepare): 2f+1 distinct replicas in all.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chain.block import CommitCertificate, Vote, certificate_problem
from ..chain.consortium import Consortium
from . import messages
from .messages import COMMIT, PRE_PREPARE, PREPARE, PreparedProof, Signed, ViewChange

# Certificates already checked (by encoding), per consortium. A replica sees the same tip
# certificate in many VIEW-CHANGEs and STATUS messages; checking its 2f+1 signatures once is
# enough. Whether a certificate is valid depends on the consortium (its keys and f), so the cache
# is kept per consortium object (held here, so its id is not reused): a certificate of 3 votes
# checked for a 4-node consortium must not pass for a 7-node one with the same chain id.
CERT_CACHE_SIZE = 4096
MAX_CACHED_CONSORTIA = 16
_good_certs: dict[int, tuple[Consortium, dict[bytes, None]]] = {}


def certificate_ok(cert: CommitCertificate, consortium: Consortium, height: int) -> bool:
    """``cert`` proves a block committed at ``height`` (2f+1 valid commit votes, SPEC §5)."""
    if cert.height != height:
        return False
    entry = _good_certs.get(id(consortium))
    if entry is None:
        if len(_good_certs) >= MAX_CACHED_CONSORTIA:
            _good_certs.clear()
        entry = _good_certs[id(consortium)] = (consortium, {})
    good = entry[1]
    key = cert.encode()
    if key in good:
        return True
    if certificate_problem(cert, consortium.chain_id, consortium.node_keys, consortium.f) is not None:
        return False
    if len(good) >= CERT_CACHE_SIZE:
        good.clear()
    good[key] = None
    return True


def commit_certificate(height: int, view: int, block_hash: bytes, commits: dict[str, Signed],
                       consortium: Consortium) -> CommitCertificate:
    """The block's certificate straight from 2f+1 COMMIT messages (their signatures are the SPEC
    §5 votes), in consortium order so every replica lists them the same way."""
    votes = tuple(Vote(node, commits[node].signature) for node in consortium.node_ids if node in commits)
    assert len(votes) >= consortium.quorum, "a certificate needs 2f+1 commit votes"
    return CommitCertificate(height, view, block_hash, votes)


def prepared_problem(proof: PreparedProof, consortium: Consortium) -> str | None:
    """Why ``proof`` does not show 2f+1 replicas agreeing on one block in one view, or None."""
    pp = proof.pre_prepare
    v, h, d = pp.body.view, pp.body.height, pp.body.block_hash
    primary = consortium.primary(v)
    if pp.sender != primary:
        return f"pre-prepare of view {v} not from its primary {primary}"
    keys = consortium.node_keys
    if not messages.verify(pp, keys):
        return "pre-prepare signature is invalid"
    seen: set[str] = set()
    for p in proof.prepares:
        b = p.body
        if (b.view, b.height, b.block_hash) != (v, h, d):
            return "a prepare does not match the pre-prepare"
        if p.sender == primary or p.sender in seen:
            return f"prepare from {p.sender} does not count (primary or duplicate)"
        if not messages.verify(p, keys):
            return f"prepare from {p.sender} has an invalid signature"
        seen.add(p.sender)
    if len(seen) < 2 * consortium.f:
        return f"{len(seen)} prepares; 2f = {2 * consortium.f} are needed"
    return None


def view_change_problem(vc: Signed, consortium: Consortium, *, need_block: bool) -> str | None:
    """Why a VIEW-CHANGE is not valid evidence for the NEW-VIEW rule, or None. ``need_block``:
    a VIEW-CHANGE sent directly must carry its prepared block; inside a NEW-VIEW it does not."""
    body: ViewChange = vc.body
    if vc.kind != messages.VIEW_CHANGE:
        return "not a VIEW-CHANGE"
    if body.view == 0:
        return "nobody changes to view 0"
    if not messages.verify(vc, consortium.node_keys):
        return "VIEW-CHANGE signature is invalid"
    if body.committed_height == 0:
        if body.certificate is not None:
            return "genesis has no certificate"
    elif body.certificate is None or not certificate_ok(body.certificate, consortium, body.committed_height):
        return f"no valid certificate for committed height {body.committed_height}"
    proof = body.prepared
    if proof is not None:
        if proof.height != body.committed_height + 1:
            return "prepared proof is not for the height after the committed one"
        if proof.view >= body.view:
            return "prepared proof is not from an earlier view"
        problem = prepared_problem(proof, consortium)
        if problem:
            return f"prepared proof: {problem}"
        if need_block and (vc.block is None or vc.block.hash != proof.block_hash):
            return "prepared block missing or not the one prepared"
    elif vc.block is not None:
        return "a block without a prepared proof"
    return None


@dataclass(frozen=True)
class NewViewDecision:
    """What a NEW-VIEW built from some VIEW-CHANGEs must contain.

    ``base``: the highest committed height proven among them; heights up to it are settled.
    ``proof``: the prepared proof of the highest view for ``base + 1``, whose block the new
    primary must re-propose; None means no block can have committed at ``base + 1`` and the
    primary proposes a fresh one.
    """

    base: int
    proof: PreparedProof | None

    @property
    def block_hash(self) -> bytes | None:
        return None if self.proof is None else self.proof.block_hash


def new_view_decision(view_changes: list[ViewChange]) -> NewViewDecision:
    """PBFT §4.4's choice of pre-prepares for the new view, for one block in flight.

    If a block B committed at height h in view u, 2f+1 replicas sent COMMIT, so f+1 honest ones
    prepared B in u before they moved on. Any 2f+1 VIEW-CHANGEs include one of them, reporting
    either a committed height >= h (then ``base`` >= h and h is settled) or its prepared proof for
    h from a view >= u; by induction every proof for h from a view >= u is for B, so the proof of
    the highest view is B's. A committed block is therefore never replaced.
    """
    base = max(vc.committed_height for vc in view_changes)
    best: PreparedProof | None = None
    for vc in view_changes:
        p = vc.prepared
        if p is None or p.height != base + 1:
            continue  # proofs for settled heights are obsolete
        if best is None or (p.view, p.block_hash) > (best.view, best.block_hash):
            best = p
    return NewViewDecision(base, best)


class VoteBook:
    """PREPARE and COMMIT votes by (kind, height, view, block hash) -> {node: message}.

    A node's first vote for a (kind, height, view) is the one counted; a second, different one is
    equivocation (``evidence``) and is not stored, so a Byzantine node cannot grow this.
    """

    def __init__(self) -> None:
        self._votes: dict[tuple[str, int, int, bytes], dict[str, Signed]] = {}
        self._first: dict[tuple[str, int, int, str], bytes] = {}

    def add(self, vote: Signed) -> bool:
        """Store ``vote``; False when the node already voted for another block there."""
        b = vote.body
        slot = (vote.kind, b.height, b.view, vote.sender)
        prior = self._first.get(slot)
        if prior is not None and prior != b.block_hash:
            return False
        self._first[slot] = b.block_hash
        self._votes.setdefault((vote.kind, b.height, b.view, b.block_hash), {})[vote.sender] = vote
        return True

    def get(self, kind: str, height: int, view: int, block_hash: bytes) -> dict[str, Signed]:
        return self._votes.get((kind, height, view, block_hash), {})

    def at_height(self, kind: str, height: int) -> list[tuple[int, bytes, dict[str, Signed]]]:
        """(view, block hash, votes) for one kind at one height, in insertion order."""
        return [(k[2], k[3], v) for k, v in self._votes.items() if k[0] == kind and k[1] == height]

    def prune(self, *, below_height: int, below_view: int = 0) -> None:
        """Forget votes for heights < ``below_height``, and PREPAREs for views < ``below_view``
        (COMMITs of old views still make certificates; prepares of old views never count)."""
        def keep(kind: str, h: int, v: int) -> bool:
            return h >= below_height and (kind == COMMIT or v >= below_view)

        self._votes = {k: v for k, v in self._votes.items() if keep(k[0], k[1], k[2])}
        self._first = {k: v for k, v in self._first.items() if keep(k[0], k[1], k[2])}

    def __len__(self) -> int:
        return len(self._first)


__all__ = ["VoteBook", "NewViewDecision", "new_view_decision", "commit_certificate", "prepared_problem",
           "view_change_problem", "certificate_ok", "PRE_PREPARE", "PREPARE", "COMMIT"]
