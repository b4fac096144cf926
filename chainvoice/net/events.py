"""Fan-out of committed invoice events to server-sent-event streams (wallet push)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

# Events a slow subscriber may fall behind by before it is cut off (it reconnects and re-reads
# the wallet); a stuck browser tab must not make the node buffer without bound.
MAX_BACKLOG = 10_000


@dataclass(eq=False)
class Subscription:
    holders: frozenset[str]  # hex keys; empty = any
    sellers: frozenset[str]  # seller taxpayer ids; empty = any
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(MAX_BACKLOG))
    overflowed: bool = False

    def wants(self, holders: set[str], sellers: set[str]) -> bool:
        if self.holders and not (self.holders & holders):
            return False
        if self.sellers and not (self.sellers & sellers):
            return False
        return True


class EventHub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.published = 0

    def has_subscribers(self) -> bool:
        return bool(self._subs)

    def subscribe(self, holders: set[str], sellers: set[str]) -> Subscription:
        sub = Subscription(frozenset(holders), frozenset(sellers))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: dict[str, Any], *, holders: set[str], sellers: set[str]) -> None:
        self.published += 1
        for sub in list(self._subs):
            if sub.wants(holders, sellers):
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.overflowed = True
                    self._subs.discard(sub)

    def close(self) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        self._subs.clear()
