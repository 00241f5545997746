"""A noise matrix's column blocks fed to accumulators in one pass, per block and pooled."""

from __future__ import annotations

import numpy as np

from sgnoise import threads
from sgnoise.tail_index.common import MIN_SAMPLES, tie_tolerance_of, ties
from sgnoise.tail_index.streaming import (
    AlphaAccumulator,
    Words,
    absorb,
    accumulate,
    design_of,
)


class ColumnBlock:
    """The kept columns of a column block of a matrix, row-major, cut into jobs for the threads.

    Jobs are whole rows, or pieces of one row when a row is longer than a
    job. :meth:`parts` gives a job's values and (if ``mean`` is given) their
    standardised values, exact zeros and near-ties with 0 left out
    (:func:`~sgnoise.tail_index.common.ties`, tolerance from the column's ``mean`` and
    ``std``; ``sizes[j]`` values remain in job j; ``zero_free``: columns known to have
    none; without ``mean`` zeros stay, as samples without a log); :meth:`null_parts`
    gives the pooled Gaussian surrogate, the first columns of ``null`` (a standardised
    Gaussian matrix) scaled to the kept columns' standard deviations and
    shifted to their means. Neither array is ever held whole.
    """

    def __init__(
        self,
        noise: np.ndarray,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        zero_free: np.ndarray | None = None,
        kept: np.ndarray | None = None,
        null: np.ndarray | None = None,
    ):
        self.noise, self.mean, self.std, self.kept, self.null = noise, mean, std, kept, null
        self.inverse_std = None if std is None else 1 / std
        rows = noise.shape[0]
        self.cols = cols = noise.shape[1] if kept is None else kept.size
        self.n = n = rows * cols
        if not cols:
            self.bounds, self.sizes, self.n_x, self._zeros = [0], np.zeros(0, int), 0, {}
            return
        chunk = threads.CHUNK
        if cols >= chunk:
            bounds = [*(r * cols + c for r in range(rows) for c in range(0, cols, chunk)), n]
        else:
            bounds = [*range(0, n, chunk // cols * cols), n]
        zeros = np.zeros(len(bounds) - 1, int)
        if mean is not None:
            self.tolerance = tie_tolerance_of(mean, std).astype(noise.dtype)
            zero_cols = np.flatnonzero(~zero_free)
            x = noise[:, zero_cols if kept is None else kept[zero_cols]]
            r, j = np.nonzero(ties(x, tolerance=self.tolerance[zero_cols]))
            zeros = np.diff(np.searchsorted(r * cols + zero_cols[j], bounds))
        self.bounds, self.sizes = bounds, np.diff(bounds) - zeros
        self.n_x = int(self.sizes.sum())
        self._zeros = dict(zip(bounds, zeros > 0, strict=False))

    def _where(self, start: int, stop: int) -> tuple[slice, slice]:
        r0, c0 = divmod(start, self.cols)  # rows r0:r1 in full, or columns c0:c1 of row r0
        rows = slice(r0, max(r0 + 1, stop // self.cols))
        return rows, slice(c0, c0 + min(self.cols, stop - start))

    def parts(self, start: int, stop: int) -> list[np.ndarray]:
        r, c = self._where(start, stop)
        # np.take: numpy's mixed slice-and-array indexing is 5x slower here
        x = self.noise[r, c] if self.kept is None else np.take(self.noise[r], self.kept[c], 1)
        if self.mean is None:
            return [x]
        z = x - self.mean[c]
        z *= self.inverse_std[c]
        if self._zeros[start]:
            nonzero = ~ties(x, tolerance=self.tolerance[c])
            return [x[nonzero], z[nonzero]]
        return [x, z]

    def null_parts(self, start: int, stop: int) -> list[np.ndarray]:
        r, c = self._where(start, stop)
        null = self.null[r, c] * self.std[c]
        null += self.mean[c]
        return [null]

    def feed(
        self, x_accs: list[AlphaAccumulator], null_accs: list[AlphaAccumulator], words=None
    ) -> None:
        """Values (and standardised values) into x_accs, the surrogate into null_accs.

        One label stream for all of them when no zeros are left out and they
        share a design; otherwise one each for the two lists.
        """
        designs = {design_of(a) for a in x_accs + null_accs}
        if x_accs and null_accs and self.n_x == self.n and len(designs) == 1:
            both = lambda a, b: self.parts(a, b) + self.null_parts(a, b)  # noqa: E731
            accumulate(x_accs + null_accs, self.bounds, both, None, words)
            return
        if x_accs:
            accumulate(x_accs, self.bounds, self.parts, self.sizes, words)
        if null_accs:
            accumulate(null_accs, self.bounds, self.null_parts, None, words)


def pooled_accumulators(
    blocks: list[ColumnBlock], n_kinds: int, with_null: bool, seed
) -> list[list[AlphaAccumulator] | None]:
    """Accumulators of every block, then of all blocks pooled (last); None below MIN_SAMPLES.

    Each list holds ``n_kinds`` accumulators of the block's values (and
    standardised values) and, ``with_null``, one of its pooled surrogate. A
    block's accumulators are exactly what the block alone gives (its own
    label stream, from ``seed``). The pooled ones take over the atoms and
    moments of the first block whose design they share (the atoms of one
    pass serve both estimates); every other block's samples are labelled
    again for them, from one further stream (every block's own stream
    repeats the first block's labels, which must not happen twice within
    one estimate). With one dominant block, as the first layer of an MLP
    is, the pooled estimate costs little more than the scatter of the
    other blocks.
    """

    def new(n_x: int, n: int) -> list[AlphaAccumulator] | None:
        if n_x < MIN_SAMPLES:
            return None
        accs = [AlphaAccumulator(n_x, seed=seed) for _ in range(n_kinds)]
        return accs + ([AlphaAccumulator(n, seed=seed)] if with_null else [])

    n_x, n = sum(b.n_x for b in blocks), sum(b.n for b in blocks)
    pooled = new(n_x, n)
    if pooled is None:
        return [new(b.n_x, b.n) for b in blocks] + [None]  # not one estimate has enough samples
    words = Words(np.random.SeedSequence(seed).spawn(3)[2])  # beside the two of AlphaAccumulator
    kinds = [(slice(0, n_kinds), n_x), (slice(n_kinds, len(pooled)), n)]  # values; surrogate
    taken = [False, False]
    out = []
    for block in blocks:
        own = new(block.n_x, block.n)
        if own is not None:
            block.feed(own[:n_kinds], own[n_kinds:])
        out.append(own)
        if not block.n_x:
            continue
        shadows: list[list[AlphaAccumulator]] = [[], []]
        for k, (part, total) in enumerate(kinds):
            if not pooled[part]:
                continue
            mine = None if own is None or taken[k] else own[part]
            if mine and design_of(mine[0]) == design_of(pooled[part][0]):
                for acc, one in zip(pooled[part], mine, strict=True):
                    absorb(acc, one)
                taken[k] = True
            else:
                shadows[k] = [AlphaAccumulator(total, seed=seed) for _ in pooled[part]]
        if shadows[0] or shadows[1]:
            block.feed(*shadows, words)
            for (part, _), made in zip(kinds, shadows, strict=True):
                for acc, shadow in zip(pooled[part], made, strict=True) if made else ():
                    absorb(acc, shadow)
    return [*out, pooled]
