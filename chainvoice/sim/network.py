"""The simulated network: latency with jitter (so messages reorder), drops, duplicates, delay
spikes and partitions, including one-way ones. Decides only *whether* and *when* a message
arrives; the simulation delivers it."""

from __future__ import annotations

from typing import Callable

from .prng import Prng

# A test can drop chosen messages exactly: filter(src, dst, raw) -> True to drop.
Filter = Callable[[str, str, bytes], bool]


class Network:
    def __init__(self, prng: Prng, *, min_latency_ms: int = 2, jitter_ms: int = 20) -> None:
        self.prng = prng
        self.min_latency_ms = min_latency_ms
        self.jitter_ms = jitter_ms
        self.drop = 0.0  # probability a message is lost
        self.duplicate = 0.0  # probability a message arrives twice
        self.spike_ms = 0  # extra random delay up to this (congestion)
        self._blocked: dict[tuple[str, str], int] = {}  # directed link -> partitions cutting it
        self.filters: list[Filter] = []

    def partition(self, side: list[str], others: list[str], *, one_way: bool = False) -> list[tuple[str, str]]:
        """Cut ``side`` from ``others`` (both directions, or only side -> others); returns the
        links cut, for ``restore``. Overlapping partitions are counted per link."""
        links = [(a, b) for a in side for b in others]
        if not one_way:
            links += [(b, a) for a in side for b in others]
        for link in links:
            self._blocked[link] = self._blocked.get(link, 0) + 1
        return links

    def restore(self, links: list[tuple[str, str]]) -> None:
        for link in links:
            left = self._blocked.get(link, 0) - 1
            if left > 0:
                self._blocked[link] = left
            else:
                self._blocked.pop(link, None)

    def heal(self) -> None:
        """Every link works again with no loss, duplication or spikes (latency stays)."""
        self._blocked.clear()
        self.drop = self.duplicate = 0.0
        self.spike_ms = 0

    def connected(self, src: str, dst: str) -> bool:
        return (src, dst) not in self._blocked

    def delays(self, src: str, dst: str, raw: bytes) -> list[int]:
        """Delivery delays for one message on src -> dst: [] lost, [d] once, [d1, d2] duplicated."""
        if (src, dst) in self._blocked:
            return []
        for f in self.filters:
            if f(src, dst, raw):
                return []
        p = self.prng
        if p.chance(self.drop):
            return []
        d = self.min_latency_ms + p.below(self.jitter_ms + 1)
        if self.spike_ms:
            d += p.below(self.spike_ms + 1)
        out = [d]
        if p.chance(self.duplicate):
            out.append(d + p.below(2 * self.jitter_ms + 1))
        return out
