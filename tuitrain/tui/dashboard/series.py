"""A decimated time series: bounded memory and constant drawing cost, however long the run.

Points are kept in buckets of `width` consecutive x values (min, max, sum, count).
When there are more than `capacity` buckets, neighbours merge pairwise and the
bucket width doubles, so adding is O(1) amortised and a 100k-step run keeps no
more buckets than a 4k-step one. `view(n)` regroups to at most n points for a
plot `n` columns wide; min and max survive every merge, so spikes never vanish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SeriesView:
    """At most n points: x (first x of each group), and the min / mean / max of y in it."""

    x: list[float]
    low: list[float]
    mean: list[float]
    high: list[float]


class Series:
    __slots__ = ("capacity", "width", "keys", "xs", "lows", "highs", "sums", "counts", "last", "last_x", "total")

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.width = 1
        self.keys: list[int] = []
        self.xs: list[float] = []
        self.lows: list[float] = []
        self.highs: list[float] = []
        self.sums: list[float] = []
        self.counts: list[int] = []
        self.last: float | None = None
        self.last_x: float | None = None
        self.total = 0  # points added (after truncation: kept)

    def __len__(self) -> int:
        return self.total

    def add(self, x: float, y: float) -> None:
        if not math.isfinite(y):
            return
        key = int(x) // self.width
        self.last, self.last_x = y, x
        self.total += 1
        if self.keys and key <= self.keys[-1]:  # same bucket (or x went back: fold into the last one)
            i = -1
            if y < self.lows[i]:
                self.lows[i] = y
            if y > self.highs[i]:
                self.highs[i] = y
            self.sums[i] += y
            self.counts[i] += 1
            return
        self.keys.append(key)
        self.xs.append(x)
        self.lows.append(y)
        self.highs.append(y)
        self.sums.append(y)
        self.counts.append(1)
        if len(self.keys) > self.capacity:
            self._halve()

    def _halve(self) -> None:
        self.width *= 2
        keys: list[int] = []
        for j in range(len(self.keys)):
            key = self.keys[j] // 2
            if keys and keys[-1] == key:
                i = len(keys) - 1
                self.lows[i] = min(self.lows[i], self.lows[j])
                self.highs[i] = max(self.highs[i], self.highs[j])
                self.sums[i] += self.sums[j]
                self.counts[i] += self.counts[j]
            else:
                i = len(keys)
                keys.append(key)
                self.xs[i], self.lows[i], self.highs[i] = self.xs[j], self.lows[j], self.highs[j]
                self.sums[i], self.counts[i] = self.sums[j], self.counts[j]
        n = len(keys)
        self.keys = keys
        for name in ("xs", "lows", "highs", "sums", "counts"):
            del getattr(self, name)[n:]

    def truncate(self, x_max: float) -> None:
        """Forget points past x_max (a run resumed from an earlier backup retrains them)."""
        key = int(x_max) // self.width
        n = len(self.keys)
        while n and self.keys[n - 1] > key:
            n -= 1
        for name in ("keys", "xs", "lows", "highs", "sums", "counts"):
            del getattr(self, name)[n:]
        self.total = sum(self.counts)
        self.last = self.sums[-1] / self.counts[-1] if n else None
        self.last_x = min(self.last_x, x_max) if n and self.last_x is not None else None

    def view(self, n: int) -> SeriesView:
        if n <= 0 or not self.keys:
            return SeriesView([], [], [], [])
        group = max(1, math.ceil(len(self.keys) / n))
        xs, lows, means, highs = [], [], [], []
        for start in range(0, len(self.keys), group):
            stop = start + group
            xs.append(self.xs[start])
            lows.append(min(self.lows[start:stop]))
            highs.append(max(self.highs[start:stop]))
            means.append(sum(self.sums[start:stop]) / sum(self.counts[start:stop]))
        return SeriesView(xs, lows, means, highs)

    def smoothed(self, n: int, weight: float = 0.95) -> list[float]:
        """The exponential moving average (debiased, as TensorBoard draws it), at the end of each
        of view(n)'s groups. Computed when drawn, over the buckets: a bucket of c points with mean
        m moves the average as c points of value m would, so applying events stays cheap."""
        if n <= 0 or not self.keys:
            return []
        group = max(1, math.ceil(len(self.keys) / n))
        out: list[float] = []
        ema = norm = 0.0
        for i, (s, c) in enumerate(zip(self.sums, self.counts)):
            decay = weight**c
            ema = decay * ema + (1 - decay) * (s / c)
            norm = decay * norm + (1 - decay)
            if (i + 1) % group == 0 or i == len(self.keys) - 1:
                out.append(ema / norm)
        return out

    def recent(self, n: int) -> list[float]:
        """The means of the last n buckets (for sparklines)."""
        return [s / c for s, c in zip(self.sums[-n:], self.counts[-n:])]
