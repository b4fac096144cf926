"""Catch-up decisions: how far behind we are (only certified heights count) and whom to ask next.

Heights are learned from commit certificates (in STATUS, VIEW-CHANGE and NEW-VIEW messages, or
2f+1 COMMITs seen directly), never from a bare claim, so a lying peer cannot send us chasing
blocks that do not exist. Blocks fetched are checked with ``Chain.check_certified``; a peer whose
answer fails is not asked again while others can be.
"""

from __future__ import annotations


class CatchUp:
    def __init__(self) -> None:
        self.target = 0  # highest height known (certified) to be committed
        self._heights: dict[str, int] = {}  # peer -> highest height it proved to have
        self._bad: dict[str, int] = {}  # peer -> our tip when its answer failed
        self._inflight: tuple[str, int] | None = None  # (peer, retry at ms)
        self._turn = 0

    def learn(self, height: int, peer: str) -> None:
        self.target = max(self.target, height)
        if height > self._heights.get(peer, -1):
            self._heights[peer] = height

    def behind(self, tip: int) -> bool:
        return self.target > tip

    def next_peer(self, tip: int, now_ms: int) -> str | None:
        """The peer to ask for the blocks after ``tip``, or None (nothing to do, or a request is
        still within its retry time)."""
        if self.target <= tip:
            self._inflight = None
            return None
        if self._inflight is not None and now_ms < self._inflight[1]:
            return None
        able = [p for p, h in self._heights.items() if h > tip and self._bad.get(p) != tip]
        if not able:
            able = [p for p, h in self._heights.items() if h > tip]  # forgive: maybe the fault was ours
            self._bad.clear()
        if not able:
            return None
        self._turn += 1
        return able[self._turn % len(able)]

    def requested(self, peer: str, retry_at_ms: int) -> None:
        self._inflight = (peer, retry_at_ms)

    def answered(self, peer: str) -> None:
        if self._inflight is not None and self._inflight[0] == peer:
            self._inflight = None

    def failed(self, peer: str, tip: int) -> None:
        self._bad[peer] = tip
        self.answered(peer)

    @property
    def waiting(self) -> bool:
        return self._inflight is not None
