"""What a replica asks its shell to do. The shell executes a returned list IN ORDER: a
``PersistSafety`` must be durable before any later ``Send`` (the votes it protects) goes out, and a
``Commit`` must be stored before later actions run."""

from __future__ import annotations

from dataclasses import dataclass

from ..chain.chain import BlockCommit


@dataclass(frozen=True)
class Send:
    """Send ``raw`` (an encoded signed consensus message) to one peer, or to every other replica
    when ``to`` is None."""

    to: str | None
    raw: bytes


@dataclass(frozen=True)
class SetTimer:
    """Call ``on_timer(name, ...)`` at ``at_ms``; replaces a pending timer with the same name."""

    name: str
    at_ms: int


@dataclass(frozen=True)
class PersistSafety:
    """Durably save ``state`` (ChainStore.save_safety) before executing any later action."""

    state: bytes


@dataclass(frozen=True)
class Commit:
    """A certified block: ``store.save_commit(commit)`` before later actions. The replica has
    already advanced its ``Chain`` (chain.commit)."""

    commit: BlockCommit


@dataclass(frozen=True)
class RecordEvidence:
    """Two conflicting signed messages by one node (``evidence.decode`` reads them back)."""

    evidence_id: bytes
    evidence: bytes


@dataclass(frozen=True)
class Dropped:
    """Transactions removed from the mempool without being committed, so waiting clients can be
    answered (e.g. a replay of a committed transaction, or a full mempool)."""

    tx_ids: list[bytes]
    reason: str


Action = Send | SetTimer | PersistSafety | Commit | RecordEvidence | Dropped

# Reasons in Dropped actions.
DROP_COMMITTED = "already committed"
DROP_FULL = "mempool full"
