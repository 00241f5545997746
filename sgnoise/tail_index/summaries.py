"""Alpha of a gradient-noise matrix with intervals and null levels, per layer and pooled."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from sgnoise.tail_index import nulls
from sgnoise.tail_index.columns import check_matrix, column_stats, standardised_gaussian
from sgnoise.tail_index.common import MIN_SAMPLES, interval, inverse, tie_tolerance_of, ties
from sgnoise.tail_index.estimators import (
    DEFAULT_METHOD,
    INTERVAL_METHODS,
    inverse_alpha_and_se,
)
from sgnoise.tail_index.pooling import ColumnBlock, pooled_accumulators
from sgnoise.tail_index.streaming import AlphaAccumulator, accumulate
from sgnoise.threads import in_order


@functools.lru_cache(maxsize=64)
def _standardised_null(rows: int, widths: tuple[int, ...]) -> tuple[tuple[float, ...], float]:
    """1/alpha of the standardised surrogate of each layer and pooled: one per shape (and run)."""
    per_layer, pooled = nulls.inverse_alpha([np.ones(w) for w in widths], rows)
    return tuple(per_layer), pooled


def _column_blocks(n_coords: int, layers: Mapping[str, slice] | None) -> list[tuple[str, slice]]:
    """(name, columns) of each layer, checked to cover 0..n_coords in order; [] without layers."""
    if not layers:
        return []
    stop = 0
    for cols in layers.values():
        if not isinstance(cols, slice) or cols.start != stop or cols.step not in (None, 1):
            break
        stop = cols.stop
    else:
        if stop == n_coords and "all" not in layers:
            return list(layers.items())
    raise ValueError(
        f"layers must map names other than 'all' to column slices covering 0..{n_coords} "
        f"in order (slice(0, a), slice(a, b), ...), got {dict(layers)}"
    )


def _plain_fits(noise, mean, std, kept, method: str, seed) -> tuple[list[tuple], int]:
    """(1/alpha, se, dof) by ``method`` of the noise, standardised noise, drawn surrogate and
    standardised surrogate, on arrays made whole (not the default method)."""
    x = noise[:, kept]
    z = x - mean
    z *= 1 / std  # as standardise() and the default method's ColumnBlock.parts do it
    z = z.ravel()
    nonzero = ~ties(x, tolerance=tie_tolerance_of(mean, std)).ravel()
    x, z = x.ravel()[nonzero], z[nonzero]
    if x.size < MIN_SAMPLES:
        return [], x.size
    g = standardised_gaussian(noise.shape, noise.dtype, seed)
    arrays = (x, z, g[:, : kept.size] * std + mean, g)
    return [inverse_alpha_and_se(v.ravel(), method, seed, True, {}) for v in arrays], x.size


def _summary(fits: list, n_samples: int, n_dropped: int, level: float) -> dict[str, float]:
    """summarise_noise's dict from the (1/alpha, se, dof) of the noise and standardised noise
    and the 1/alpha of the surrogate and standardised surrogate (as a 1-tuple or any fit)."""
    out: dict[str, float] = {"n_samples": n_samples, "n_dropped": n_dropped}
    if not fits:
        keys = ("", "_lo", "_hi", "_surrogate")
        return {f"{p}{k}": float("nan") for p in ("alpha", "alpha_std") for k in keys} | out
    for prefix, (u, se, dof) in zip(("alpha", "alpha_std"), fits[:2], strict=True):
        out[prefix] = inverse(u)
        out[f"{prefix}_lo"], out[f"{prefix}_hi"] = interval(u, se, dof, level)
    out["alpha_surrogate"], out["alpha_std_surrogate"] = (inverse(f[0]) for f in fits[2:])
    return out


def summarise_layers(
    noise,
    layers: Mapping[str, slice] | None = None,
    *,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, float]]:
    """:func:`summarise_noise` of each layer's columns and of all columns, in one pass.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        As for :func:`summarise_noise`.
    layers : mapping of str to slice, optional
        Each layer's columns, ``{"layer1": slice(0, a), "layer2": slice(a,
        b), ...}``, in order and covering all columns (as
        :class:`sgnoise.noise.NoisePass` lays them out).
    method, seed, level
        As for :func:`summarise_noise`.

    Returns
    -------
    dict
        ``{name: summary}`` for each layer, then ``"all"``: the summary of
        all columns pooled. A layer's summary is exactly
        ``summarise_noise(noise[:, columns], seed=seed)``; ``"all"`` is an
        estimate of the same quantity as ``summarise_noise(noise, seed=seed)``
        with other random blocks: with the default method its accumulators
        take over the first layer's (whose values the pooled estimate would
        otherwise label and log a second time) and label only the other
        layers' values again, from a stream of their own (see
        ``pooled_accumulators``). Its surrogates are those of all the
        layers' columns pooled.
    """
    noise = check_matrix(noise)
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    named = _column_blocks(noise.shape[1], layers) or [("all", slice(0, noise.shape[1]))]
    mean, std, keep, zero_free = column_stats(noise)
    if method != "mohammadi_avg":
        parts = [*named, ("all", slice(0, noise.shape[1]))] if layers else named
        results = []
        for _, cols in parts:
            k = np.flatnonzero(keep[cols])
            fits, n_x = _plain_fits(noise[:, cols], mean[cols][k], std[cols][k], k, method, seed)
            results.append(_summary(fits, n_x, cols.stop - cols.start - k.size, level))
    else:
        rows, dtype = noise.shape[0], noise.dtype
        widths = [cols.stop - cols.start for _, cols in named]
        kept = [np.flatnonzero(keep[cols]) for _, cols in named]
        dropped = [w - k.size for w, k in zip(widths, kept, strict=True)]
        # Centred columns (as the noise pass makes them): the surrogate's expected estimate in
        # closed form; otherwise (train_reference's test noise) an estimate on a drawn one.
        centred = bool(np.all(np.abs(mean[keep]) <= nulls.CENTRED * std[keep]))
        blocks = [
            ColumnBlock(
                noise[:, cols],
                mean[cols][k],
                std[cols][k],
                zero_free[cols][k],
                None if k.size == w else k,
                None if centred else standardised_gaussian((rows, w), dtype, seed),
            )
            for (_, cols), k, w in zip(named, kept, widths, strict=True)
        ]
        accs = pooled_accumulators(blocks, 2, not centred, seed)
        if centred:
            per_layer, pooled = nulls.inverse_alpha([b.std for b in blocks], rows)
            surrogates = [(u,) for u in [*per_layer, pooled]]
        else:
            surrogates = [None if a is None else a[2].inverse_alpha_and_se() for a in accs]
        per_layer, pooled = _standardised_null(rows, tuple(widths))
        n_x = [b.n_x for b in blocks]
        counts = zip([*n_x, sum(n_x)], [*dropped, sum(dropped)], strict=True)
        # The estimates from the accumulators' block sums, on the worker threads
        fits = iter(in_order(acc.inverse_alpha_and_se for a in accs if a for acc in a[:2]))
        results = [
            _summary([] if a is None else [next(fits), next(fits), sur, (u,)], n, d, level)
            for a, sur, u, (n, d) in zip(
                accs, surrogates, [*per_layer, pooled], counts, strict=True
            )
        ]
    if not layers:
        return {"all": results[-1]}
    return dict(zip([name for name, _ in named] + ["all"], results, strict=True))


def summarise_noise(
    noise, *, method: str = DEFAULT_METHOD, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Pooled and standardised alpha of a noise matrix, with intervals and null levels.

    Parameters
    ----------
    noise : array_like, shape (n_rows, n_coords)
        Gradient noise: one row per minibatch, one column per parameter.
        Finite (NaN/inf raise, with their count), n_rows >= 2.
    method : str
        One of :data:`INTERVAL_METHODS` (a cheap interval is needed at every
        checkpoint).
    seed : int
        Seed of the random blocks (and of a drawn surrogate).
    level : float
        Coverage of the intervals.

    Returns
    -------
    dict
        ``alpha, alpha_lo, alpha_hi``: all values pooled (the paper's
        quantity, with order-safe random blocks); ``alpha_surrogate``: the
        same on :func:`gaussian_surrogate` of the noise, the level pooling
        Gaussians of these column scales would give; ``alpha_std,
        alpha_std_lo, alpha_std_hi``: after :func:`standardise`;
        ``alpha_std_surrogate``: the same on a standardised Gaussian matrix
        of the noise's shape (the null level of ``alpha_std``; constant
        columns, left out of the noise, are not left out of it: it then
        depends only on the shape). With the default method and centred
        columns (every |mean| <= 1e-4 sd, as :func:`sgnoise.noise.noise_pass`
        makes them) both surrogates are the estimator's expected value on
        such Gaussians, in closed form (:mod:`.nulls`): 1 / E[1/alpha-hat],
        without the sampling noise of one draw (sd 0.001-0.01); otherwise
        (e.g. test noise minus the train gradient) ``alpha_surrogate`` is the
        estimate on one seeded draw.
        ``n_samples``: values used (constant columns and exact zeros, which
        have no log, are left out of every estimate); ``n_dropped``: constant
        columns. All estimates unclipped; all NaN if fewer than 100 values
        remain (e.g. a dead network).

    Notes
    -----
    Compare ``alpha`` with ``alpha_surrogate`` and ``alpha_std`` with
    ``alpha_std_surrogate``, not with 2. :func:`summarise_layers` gives this
    for every layer and for all of them in one pass.

    Cost. With the default method the estimates that depend on the noise
    share one label stream and one pass over it, on the worker threads; the
    closed-form surrogates cost a few milliseconds (a drawn surrogate, for
    columns not centred, is a third estimate in the same pass, and its
    Gaussian matrix is kept for the next call with the same shape and seed).
    A call on centred noise costs about three estimates of as many values
    (2.9 measured: two estimates, the column statistics and the standardised
    values; bench/bench_tail_index.py).

    The pooled surrogate is Gaussian with the *sample* variance of each
    column. If the noise itself is heavy-tailed, each column's sample
    variance is dominated by its largest value, so these variances spread
    widely and the surrogate looks heavy-tailed too: for SaS(1.5) columns of
    equal scale (16 rows) ``alpha`` = 1.50 and ``alpha_surrogate`` = 1.55.
    ``alpha`` near ``alpha_surrogate`` therefore says "no heavier than
    Gaussians with these column variances", not "Gaussian".

    Standardised values are bounded, |z| <= sqrt(n - 1) for n rows, and
    correlated within a column. For Gaussian columns this hardly matters: the
    standardised surrogate gives alpha = 2.019 for 16 rows x 79,400 columns
    (the 784-100-10 MLP on mnist10k, batch 500; one draw: 2.019 +- 0.007,
    mean +- sd over 10 seeds) and 2.002 for 120 rows (full MNIST; one draw:
    2.003 +- 0.003). For heavy tails it
    does: a column of n values shows no tail beyond sqrt(n - 1) of its own
    scale, so ``alpha_std`` is pulled towards 2 (SaS(1.5) columns: 1.87 for
    16 rows, 1.69 for 120). ``alpha_std`` below its surrogate is evidence of
    heavy tails within coordinates; it is not an estimate of their alpha.
    (``bench/validate_tail_index.py`` prints these numbers.)
    """
    return summarise_layers(noise, method=method, seed=seed, level=level)["all"]


def standardised_alpha(
    noise, *, seed: int = 0, level: float = 0.95, centred: bool = True
) -> dict[str, float]:
    """The standardised alpha of :func:`summarise_noise` alone, at about half its cost.

    Returns ``alpha_std``, ``alpha_std_lo``, ``alpha_std_hi``, ``n_samples`` and
    ``n_dropped``, the same numbers as ``summarise_noise(noise, seed=seed,
    level=level)`` (default method): the standardised values, exact zeros of the
    noise left out, get the labels of the same seeded stream, but neither the
    noise itself nor a surrogate is estimated. What a calibration needs
    (:func:`sgnoise.calibration.calibrate`). ``centred=False``: each column divided by
    its root mean square, not centred (noise known to have mean zero, see
    :func:`~sgnoise.tail_index.standardise`).
    """
    noise = check_matrix(noise)
    mean, std, keep, zero_free = column_stats(noise, centred=centred)
    k = np.flatnonzero(keep)
    block = ColumnBlock(
        noise, mean[k], std[k], zero_free[k], None if k.size == noise.shape[1] else k
    )
    out = {"n_samples": block.n_x, "n_dropped": noise.shape[1] - k.size}
    if block.n_x < MIN_SAMPLES:
        return dict.fromkeys(("alpha_std", "alpha_std_lo", "alpha_std_hi"), float("nan")) | out
    acc = AlphaAccumulator(block.n_x, seed=seed)
    accumulate([acc], block.bounds, lambda a, b: block.parts(a, b)[1:], block.sizes)
    u, se, dof = acc.inverse_alpha_and_se()
    lo, hi = interval(u, se, dof, level)
    return {"alpha_std": inverse(u), "alpha_std_lo": lo, "alpha_std_hi": hi} | out
