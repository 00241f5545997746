"""Per-example gradients at frozen weights, and the tail exponents of their distribution.

Does the central limit theorem apply to minibatch gradients? A minibatch
gradient is the mean of b per-example gradients g_i drawn from the training
set. If, coordinate by coordinate, the g_i have finite variance, the noise of
the mean becomes Gaussian as b grows (the textbook view); if their law has a
power tail P(|g - E g| > t) ~ t^-xi with exponent xi < 2 (infinite variance),
the mean is attracted to an alpha-stable law with alpha = xi instead
(Simsekli, Sagun & Gurbuzbalaban 2019, section 3, the premise of their
alpha-stable model). This module measures xi directly, on the per-example
gradients rather than on minibatch noise.

Per-example gradients. With the notation of :mod:`sgnoise.mlp` (h_{l-1} the
input of layer l, delta_l = d loss_i / d z_l for example i's own loss), the
gradient of loss_i is

    d loss_i / d W_l[p, q] = h_{l-1}[i, p] * delta_l[i, q],    d loss_i / d b_l[q] = delta_l[i, q],

one elementwise product per coordinate over the examples, after one forward
and backward pass (the ``tap`` of :meth:`sgnoise.model.Model.batched_loss_and_grads`).
A convolution applies W_l at every output pixel p, so its gradient sums over them:
d loss_i / d W_l[p', q] = sum_p X_l[i, p, p'] * delta_l[i, p, q], X_l the patches
(:mod:`sgnoise.cnn`). Their mean
over the examples is the full gradient. :func:`per_example_gradients` computes
them for a seeded sample of coordinates of every layer, in chunks of examples.

Tail exponents. For each coordinate (column) the sample is |g_i - mean g|,
and xi = 1/gamma with gamma the extreme-value index, estimated by Hill (1975)
from the k largest values X_(1) >= ... >= X_(k+1):

    gamma_H = (1/k) sum_{i<=k} log X_(i) - log X_(k+1).

Hill is consistent for any law whose tail is regularly varying (Student t,
stable, Pareto, ...), not only for stable laws (the block estimator of
:mod:`sgnoise.tail_index` assumes a stable law). Choice of k: k = floor(sqrt(m)),
m the column's number of non-zero values (n for a column without exact zeros;
see "Degenerate columns" for the zeros).
Under Hall's (1982) second-order model, U(t) = C t^gamma (1 + D t^rho + ...),
the bias of gamma_H is of order (n/k)^rho and its standard deviation
gamma/sqrt(k), so the bias is negligible against the standard deviation, and
the confidence interval is valid, when k = o(n^(-2 rho/(1 - 2 rho))); sqrt(n)
satisfies this for every rho < -1/2 (Student t(nu) has rho = -2/nu, so nu < 4;
stable laws rho = -1). The MSE-optimal k (Hall & Welsh 1985), which the double
bootstrap of Danielsson, de Haan, Peng & de Vries (2001) estimates, is larger
(order n^(-2 rho/(1 - 2 rho)), 2/3 for rho = -1) and by design leaves a bias of
the order of the standard deviation, so intervals built on it under-cover; the
double bootstrap also re-sorts B resamples per column, hundreds of times the
cost of the one selection of the top k + 2 used here. Undersmoothing is the
standard price for honest intervals: less power near xi = 2
(``bench/validate_per_example.py``: SaS(1.8) columns of 60,000 values give
xi-hat 1.88, but only 18% of them are called infinite-variance; at k =
n^(2/3) they read 2.35).

Interval. Above the threshold, a Pareto tail makes the k log-excesses i.i.d.
exponential with mean gamma (Renyi's representation), so k gamma_H / gamma ~
Gamma(k, 1) and the interval for gamma is [k gamma_H / G_{(1+level)/2}, k
gamma_H / G_{(1-level)/2}] with G_p the Gamma(k) quantiles (exact for a Pareto
tail, asymptotically the normal interval gamma_H (1 -+ z/sqrt(k))). The
exponent's interval is its reciprocal. A column has "infinite variance,
credibly" when the upper end of the exponent's interval is below 2.

Light tails. Hill assumes gamma > 0 and returns a small positive gamma
(a large exponent) for light or bounded tails. The moment estimator of
Dekkers, Einmahl & de Haan (1989, eq. 1.7), computed from the same k values,

    gamma_M = M1 + 1 - 1 / (2 (1 - M1^2 / M2)),   M_j = (1/k) sum (log X_(i) - log X_(k+1))^j,

is consistent for every real gamma; gamma_M < 0 points to a tail with a finite
endpoint (per-example gradients of a network on bounded inputs are bounded),
gamma_M near 0 to an exponential-type (e.g. Gaussian) tail. It is reported
beside the Hill exponent, as information.

Degenerate columns. A per-example gradient is exactly 0 wherever its input
pixel or its ReLU unit is off, so many columns are a mixture (1 - p) delta_0 +
p F. Its tail is p times F's, with F's exponent, but only m ~ pn values carry
it: k = floor(sqrt(m)) applies the same undersmoothing rule to them (with
sqrt(n), a column with m = 150 non-zero values of n = 8,000 would take its 89
"tail" values from the bulk of F, a biased estimate). Dropped, and counted:
constant columns (a dead unit, a pixel that is 0 in every image; no tail),
sparse columns (k < MIN_K = 10, fewer than 100 non-zero values), and columns
whose (k+1)-th and (k+2)-th largest |centred| values are equal: an atom other
than 0 reaches into the top k + 1, and log-excesses measured from it would
mistake the gap between the atom and the values beyond it for a heavy tail.

References
----------
Simsekli, Sagun & Gurbuzbalaban, "A Tail-Index Analysis of Stochastic Gradient
Noise in Deep Neural Networks", ICML 2019.
Hill, "A simple general approach to inference about the tail of a
distribution", Annals of Statistics 3 (1975) 1163-1174.
Hall, "On some simple estimates of an exponent of regular variation", JRSS B
44 (1982) 37-42.
Hall & Welsh, "Adaptive estimates of parameters of regular variation", Annals
of Statistics 13 (1985) 331-341.
Dekkers, Einmahl & de Haan, "A moment estimator for the index of an
extreme-value distribution", Annals of Statistics 17 (1989) 1833-1855.
Danielsson, de Haan, Peng & de Vries, "Using a bootstrap method to choose the
sample fraction in tail index estimation", J. Multivariate Analysis 76 (2001)
226-248.
Drees, de Haan & Resnick, "How to make a Hill plot", Annals of Statistics 28
(2000) 254-274.
Beirlant, Goegebeur, Segers & Teugels, "Statistics of Extremes", Wiley 2004,
section 4.2 (the exponential representation of log-excesses).
Wilson, "Probable inference, the law of succession, and statistical
inference", JASA 22 (1927) 209-212.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from numbers import Integral
from typing import NamedTuple

import numpy as np
from scipy import special

from sgnoise import threads
from sgnoise.mlp import all_finite
from sgnoise.model import Model
from sgnoise.tail_index.classical import (
    SELECT_COLUMNS,
    hill_interval,
    largest,
    log_excess_moments,
    moment_gamma,
)
from sgnoise.tail_index.common import check_level, quantiles, tie_tolerance
from sgnoise.tail_index.power_law import PowerLawTails, power_law_tails_of_top, stored_depth

#: Coordinates sampled per layer by default; a layer with at most this many is taken whole.
COORDS_PER_LAYER = 250
#: Most values of the activations and errors held at once (one chunk of examples).
CHUNK_ELEMENTS = 2**22
#: Rows :meth:`Recorder.record` multiplies at once (their operands fit in a core's cache).
RECORD_ROWS = 256
#: Fewest order statistics the tail estimator uses: a column needs >= 100 non-zero values.
MIN_K = 10


@dataclass(frozen=True, eq=False)
class PerExampleGradients:
    """Per-example gradients of a sample of coordinates (see :func:`per_example_gradients`).

    Attributes
    ----------
    matrix : ndarray, shape (n_examples, n_sampled), the model's dtype, column-major
        Row i: the gradient of example i's own loss at the sampled coordinates
        (each column contiguous, as :func:`tail_exponents` reads them).
    param : ndarray of int64, shape (n_sampled,)
        Index into ``model.params`` of each column's parameter (W_l or b_l).
    index : ndarray of int64, shape (n_sampled,)
        Flat (row-major) index of each column's coordinate in that parameter:
        p * fan_out + q for W_l[p, q], q for b_l[q].
    layers : dict
        ``{layer_name: slice}``: each layer's columns, side by side in layer order.
    """

    matrix: np.ndarray
    param: np.ndarray
    index: np.ndarray
    layers: dict[str, slice]


def _sampled_coordinates(
    model: Model, coords_per_layer: int | None, rng: np.random.Generator
) -> list[tuple[int, np.ndarray]]:
    """(parameter index, sorted flat indices) per parameter, layer by layer, W before b.

    A layer's coordinates are W_l's then b_l's, numbered together; a layer with
    more than ``coords_per_layer`` of them gives a uniform sample without
    replacement (one draw from ``rng`` per such layer, in layer order).
    """
    picked = []
    for layer in model.layer_names:
        params = model.layer_params(layer)
        sizes = [model.params[j].size for j in params]
        total = sum(sizes)
        if coords_per_layer is None or total <= coords_per_layer:
            chosen = np.arange(total)
        else:
            chosen = np.sort(rng.choice(total, coords_per_layer, replace=False))
        start = 0
        for j, size in zip(params, sizes, strict=True):
            mine = chosen[(chosen >= start) & (chosen < start + size)] - start
            picked.append((j, mine.astype(np.int64)))
            start += size
    return picked


class Recorder:
    """Per-example gradients of a seeded sample of coordinates, filled chunk by chunk.

    Whatever computes a layer's input h and error delta for a chunk of examples
    (:meth:`~sgnoise.model.Model.batched_loss_and_grads`'s ``tap``, in the noise pass
    or :func:`per_example_gradients`) hands them to :meth:`record`; the gradient of
    example i's own loss is then one product per sampled coordinate of a dense
    layer, h[i, p] * delta[i, q] for W_l[p, q], delta[i, q] for b_l[q], and for a
    convolution the sum of those products over its output pixels (one batched
    matrix product per chunk of examples, for the sampled rows p of W_l).

    Parameters
    ----------
    model : Model
    n : int
        Rows (examples) the matrix will hold.
    coords_per_layer : int or None
        Coordinates (weights and biases together) sampled uniformly without
        replacement from each layer; a layer with at most this many is taken
        whole. None: every coordinate of every layer.
    seed : int
        Seed of the coordinate sample; the same seed gives the same columns.
    """

    def __init__(
        self,
        model: Model,
        n: int,
        *,
        coords_per_layer: int | None = COORDS_PER_LAYER,
        seed: int = 0,
    ):
        if coords_per_layer is not None and (
            not isinstance(coords_per_layer, Integral) or coords_per_layer < 1
        ):
            raise ValueError(
                f"coords_per_layer must be an integer >= 1 or None, got {coords_per_layer}"
            )
        self.model = model
        self.picked = _sampled_coordinates(model, coords_per_layer, np.random.default_rng(seed))
        self.widths = [len(idx) for _, idx in self.picked]
        self.matrix = np.empty((n, sum(self.widths)), model.dtype, order="F")  # columns contiguous
        layer_of = {
            j: i for i, name in enumerate(model.layer_names) for j in model.layer_params(name)
        }
        self._by_layer: dict[int, list] = {}
        start = 0
        for (j, idx), width in zip(self.picked, self.widths, strict=True):
            cols = slice(start, start + width)
            pq = None
            if model.params[j].ndim == 2:  # W_l[p, q], and the distinct rows p among them
                p, q = np.divmod(idx, model.params[j].shape[1])
                pq = (p, q, *np.unique(p, return_inverse=True))
            self._by_layer.setdefault(layer_of[j], []).append((cols, idx, pq))
            start += width

    def record(
        self, layer: int, h: np.ndarray, delta: np.ndarray, start: int, scale: float = 1.0
    ) -> None:
        """Write rows ``start, start + 1, ...`` from one chunk's h (..., P, d_in) and delta
        (..., P, d_out) of layer ``layer`` (0-based), P its positions (1: a dense layer);
        ``scale`` multiplies delta (b when delta is that of a minibatch's mean loss)."""
        if h.shape[-2] > 1:
            self._record_positions(layer, h, delta, start, scale)
            return
        h = h.reshape(-1, h.shape[-1])
        delta = delta.reshape(-1, delta.shape[-1])
        for a in range(0, len(h), RECORD_ROWS):  # gathered operands and products stay in cache
            hs, ds = h[a : a + RECORD_ROWS], delta[a : a + RECORD_ROWS]
            rows = slice(start + a, start + a + len(hs))
            for cols, idx, pq in self._by_layer.get(layer, ()):
                if pq is None:  # b_l
                    product = ds[:, idx]
                else:
                    product = hs[:, pq[0]]
                    product *= ds[:, pq[1]]
                if scale != 1:
                    product *= scale
                self.matrix[rows, cols] = product

    def _record_positions(
        self, layer: int, h: np.ndarray, delta: np.ndarray, start: int, scale: float
    ) -> None:
        """:meth:`record` for P > 1 positions: sum_p h[i, p, p'] delta[i, p, q], for the
        sampled rows p' only, as a batched product (rows, p's, P) x (rows, P, d_out)."""
        positions = h.shape[-2]
        h = h.reshape(-1, positions, h.shape[-1])
        delta = delta.reshape(-1, positions, delta.shape[-1])
        step = max(1, RECORD_ROWS * 16 // positions)
        for a in range(0, len(h), step):
            hs, ds = h[a : a + step], delta[a : a + step]
            rows = slice(start + a, start + a + len(hs))
            for cols, idx, pq in self._by_layer.get(layer, ()):
                if pq is None:  # b_l
                    product = ds.sum(axis=1)[:, idx]
                else:
                    p, q, distinct, where = pq
                    sampled = hs if len(distinct) == hs.shape[-1] else hs[:, :, distinct]
                    product = np.matmul(sampled.swapaxes(1, 2), ds)[:, where, q]
                if scale != 1:
                    product *= scale
                self.matrix[rows, cols] = product

    def result(self) -> PerExampleGradients:
        """The matrix and which coordinate each column is."""
        model = self.model
        layers, start = {}, 0
        for layer in model.layer_names:
            params = model.layer_params(layer)
            width = sum(
                w for (j, _), w in zip(self.picked, self.widths, strict=True) if j in params
            )
            layers[layer] = slice(start, start + width)
            start += width
        return PerExampleGradients(
            matrix=self.matrix,
            param=np.repeat([j for j, _ in self.picked], self.widths).astype(np.int64),
            index=np.concatenate([idx for _, idx in self.picked]),
            layers=layers,
        )


def per_example_gradients(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    coords_per_layer: int | None = COORDS_PER_LAYER,
    seed: int = 0,
) -> PerExampleGradients:
    """Each example's own loss gradient at a seeded sample of coordinates, weights frozen.

    d loss_i / d W_l[p, q] = h_{l-1}[i, p] delta_l[i, q] and d loss_i / d b_l[q]
    = delta_l[i, q] (summed over a convolution's pixels; module docstring), from
    one forward and backward pass per chunk of examples (at most
    :data:`CHUNK_ELEMENTS` activations at once), whose ``tap`` hands each layer's
    inputs and errors to a :class:`Recorder`. The mean of the rows is the full
    gradient (``model.loss_and_grads(x, y)``) at those coordinates.

    Parameters
    ----------
    model : Model
        The network at its current (frozen) weights.
    x : ndarray, shape (n, n_inputs)
    y : ndarray of int, shape (n,)
    coords_per_layer, seed
        The coordinate sample, as for :class:`Recorder`.

    Returns
    -------
    PerExampleGradients
        The (n, n_sampled) matrix and which coordinate each column is.
    """
    x, y = np.asarray(x), np.asarray(y)
    model.check_inputs(x, y)
    n = x.shape[0]
    recorder = Recorder(model, n, coords_per_layer=coords_per_layer, seed=seed)
    rows = max(1, CHUNK_ELEMENTS // model.activations_per_example)
    for a in range(0, n, rows):
        xc, yc = x[a : a + rows].astype(model.dtype, copy=False), y[a : a + rows]
        # delta is that of the chunk's mean loss: len(xc) times each example's own
        tap = functools.partial(_record_at, recorder, start=a, scale=len(xc))
        model.batched_loss_and_grads(xc, yc, tap=tap)
    return recorder.result()


def _record_at(
    recorder: Recorder, layer: int, h: np.ndarray, delta: np.ndarray, *, start: int, scale: float
) -> None:
    recorder.record(layer, h, delta, start, scale=scale)


@dataclass(frozen=True, eq=False)
class TailExponents:
    """Per-column tail estimates of a per-example gradient matrix (see :func:`tail_exponents`).

    Attributes
    ----------
    exponent : ndarray, shape (n_columns,)
        Hill tail exponent xi = 1 / gamma_H of |column - its mean|; NaN where dropped.
    lower, upper : ndarray, shape (n_columns,)
        The exponent's interval at ``level`` (Gamma interval for gamma, inverted); NaN where
        dropped.
    moment_gamma : ndarray, shape (n_columns,)
        Dekkers-Einmahl-de Haan gamma_M from the same k values (-inf when all k
        log-excesses are equal); NaN where dropped.
    k : ndarray of int64, shape (n_columns,)
        Order statistics used per column (0 where dropped).
    constant : ndarray of bool, shape (n_columns,)
        Columns with a single value (dropped).
    sparse : ndarray of bool, shape (n_columns,)
        Non-constant columns with too few non-zero values for k >= MIN_K (dropped).
    atom : ndarray of bool, shape (n_columns,)
        Other columns whose (k+1)-th and (k+2)-th largest |centred| values are
        equal (dropped: an atom reaches into the tail sample).
    level : float
        Confidence level of the intervals.
    """

    exponent: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    moment_gamma: np.ndarray
    k: np.ndarray
    constant: np.ndarray
    sparse: np.ndarray
    atom: np.ndarray
    level: float

    @property
    def kept(self) -> np.ndarray:
        """Columns with an estimate (neither constant, nor sparse, nor with an atom in the tail)."""
        return ~(self.constant | self.sparse | self.atom)

    @property
    def infinite_variance(self) -> np.ndarray:
        """Kept columns whose exponent is credibly below 2 (upper end of the interval < 2)."""
        return self.kept & (self.upper < 2)

    def select(self, columns: slice | np.ndarray) -> TailExponents:
        """The estimates of some columns only (e.g. one layer's)."""
        arrays = {f.name: getattr(self, f.name)[columns] for f in fields(self) if f.name != "level"}
        return TailExponents(**arrays, level=self.level)


def _check_grads(grads: np.ndarray) -> np.ndarray:
    """grads as a finite 2-D float array of at least MIN_K^2 rows, or a one-line ValueError."""
    grads = np.asarray(grads)
    if grads.ndim != 2 or grads.shape[1] < 1:
        raise ValueError(
            f"grads must be 2-D (rows = examples, columns = coordinates, >= 1 column), "
            f"got shape {grads.shape}"
        )
    if not np.issubdtype(grads.dtype, np.floating):
        grads = grads.astype(np.float64)
    if grads.shape[0] < MIN_K**2:
        raise ValueError(
            f"grads must have at least {MIN_K**2} rows (examples): the tail estimator uses the "
            f"k = floor(sqrt(non-zero values)) >= {MIN_K} largest values of a column, got "
            f"{grads.shape[0]}"
        )
    if not all_finite(grads):
        bad = grads.size - np.count_nonzero(np.isfinite(grads))
        raise ValueError(f"grads must be finite, got {bad} NaN/inf values")
    return grads


class Census(NamedTuple):
    """What :func:`column_census` finds of each column of a per-example matrix."""

    constant: np.ndarray
    nonzero: np.ndarray
    mean: np.ndarray
    tolerance: np.ndarray


def column_census(grads: np.ndarray) -> Census:
    """Per column of grads: constant or not, its number of non-zero values (values within
    :data:`~sgnoise.tail_index.common.TIE_TOLERANCE` of its root mean square of 0 count as
    zeros), its mean (summed in float64, in grads' dtype) and that tolerance; one pass,
    column chunks on the worker threads. :func:`activity`, :func:`tail_exponents_over_k`
    and :func:`power_law_fit` take it (``census=``) so that a caller of all three makes it
    once (a pass over the whole matrix: about 0.5 s for 60,000 x 500 float32)."""

    def stats(block):
        tolerance = tie_tolerance(block)
        return (
            block.max(axis=0) == block.min(axis=0),
            np.count_nonzero(np.abs(block) > tolerance, axis=0),
            block.mean(axis=0, dtype=np.float64),
            tolerance,
        )

    chunks = threads.column_chunks(grads.shape[1], SELECT_COLUMNS)
    parts = list(threads.in_order(functools.partial(stats, grads[:, c]) for c in chunks))
    constant, nonzero, mean, tolerance = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return Census(constant, nonzero, mean.astype(grads.dtype), tolerance)


def tail_exponents(
    grads: np.ndarray, *, k: int | None = None, level: float = 0.95, k_factor: float = 1.0
) -> TailExponents:
    """Hill tail exponent, its interval and the moment estimate, for every column of grads.

    Each column is centred (minus its mean) and the k + 2 largest of its absolute
    values found (:func:`~sgnoise.tail_index.classical.largest`: a threshold from a
    sample, then a sort of the values above it only; O(n) per column); Hill's gamma_H,
    its Gamma interval and gamma_M follow from each column's top k + 1, the atom check
    from its (k+1)-th and (k+2)-th (module docstring).

    Parameters
    ----------
    grads : ndarray, shape (n, n_columns)
        Rows = examples, columns = coordinates; finite, n >= MIN_K^2 (100).
    k : int, optional
        Order statistics per column. Default floor(sqrt(m)) with m the
        column's number of non-zero values (m = n without zeros; values within
        :data:`~sgnoise.tail_index.common.TIE_TOLERANCE` of the column's root
        mean square of 0 count as zeros): the undersmoothing choice of the
        module docstring, applied to the part of the column that is not the
        atom at 0 (a per-example gradient is exactly 0 wherever its input
        pixel or its ReLU unit is off, and the law of the mean of b examples
        is driven by the non-zero ones). Columns with k < :data:`MIN_K` are
        dropped as sparse. An int: that k for every column (columns with fewer
        than k + 2 non-zero values dropped as sparse).
    level : float
        Two-sided confidence level of the intervals; "credibly below 2" is a one-sided
        test at level (1 + level) / 2.
    k_factor : float
        With the default k: k = floor(k_factor sqrt(m)), at most m - 2 (for a Hill
        plot over thresholds: :func:`tail_exponents_over_k`).

    Returns
    -------
    TailExponents
    """
    grads = _check_grads(grads)
    n = grads.shape[0]
    if k is not None and (not isinstance(k, Integral) or not MIN_K <= k <= n - 2):
        raise ValueError(f"k must be an integer in [{MIN_K}, n - 2 = {n - 2}], got {k}")
    if k is None:
        return tail_exponents_over_k(grads, (k_factor,), level=level)[0]
    census = column_census(grads)
    return _hill(grads, census, _plans(census, [k]), level)[0]


def tail_exponents_over_k(
    grads: np.ndarray,
    factors: tuple[float, ...],
    *,
    level: float = 0.95,
    census: Census | None = None,
) -> list[TailExponents]:
    """:func:`tail_exponents` at k = floor(f sqrt(m)) for each factor f (a Hill plot's
    numbers), from one census of the columns (``census``: grads' :func:`column_census`,
    if already made) and one selection of their largest values."""
    grads, census, plans = _prepare(grads, factors, census)
    return _hill(grads, census, plans, level)


def _hill(grads: np.ndarray, census: Census, plans: list, level: float) -> list:
    """:func:`_estimates` of the plans from a selection of each column's largest values as
    deep as the plans need (:func:`_hill_depth`)."""
    return _estimates(_select(grads, census, _hill_depth(plans)), census, plans, level)


def _prepare(grads: np.ndarray, factors: tuple[float, ...], census: Census | None):
    """grads checked, its census (made if not given) and the Hill plans of the factors."""
    grads = _check_grads(grads)
    if not all(f > 0 for f in factors):
        raise ValueError(f"k_factor (each of them) must be > 0, got {factors}")
    census = column_census(grads) if census is None else census
    return grads, census, _plans(census, list(factors))


def _plans(census: Census, ks_or_factors: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """(k per column, sparse) for each entry: an int k (that k for every column) or a float
    factor f (k = floor(f sqrt(m)), at most m - 2); k = 0 where a column is dropped."""
    constant, nonzero = census.constant, census.nonzero
    plans = []
    for entry in ks_or_factors:
        if isinstance(entry, Integral):
            ks = np.full(nonzero.size, entry, np.int64)
            sparse = (nonzero < entry + 2) & ~constant
        else:
            ks = np.minimum(np.floor(entry * np.sqrt(nonzero)), nonzero - 2).astype(np.int64)
            sparse = (ks < MIN_K) & ~constant
        ks[constant | sparse] = 0
        plans.append((ks, sparse))
    return plans


def _hill_depth(plans: list) -> np.ndarray:
    """The largest values each column's estimates need: X_(1) ... X_(k+2) of its deepest k."""
    deepest = np.max([ks for ks, _ in plans], axis=0)
    return np.where(deepest > 0, deepest + 2, 0)


def _select(grads: np.ndarray, census: Census, depth: np.ndarray) -> np.ndarray:
    """The ``depth[c]`` largest |grads[:, c] - mean| of every column, decreasing, in float64
    (NaN below; :func:`~sgnoise.tail_index.classical.largest`)."""
    return largest(grads, depth, centre=census.mean, dtype=np.float64)


def _estimates(top: np.ndarray, census: Census, plans: list, level: float) -> list:
    """TailExponents for each plan (:func:`_plans`), from the columns' largest values ``top``
    (at least :func:`_hill_depth` of them, decreasing)."""
    constant, tolerance = census.constant, census.tolerance
    level = check_level(level)
    n_columns = constant.size
    columns = np.arange(n_columns)
    out = []
    for ks, sparse in plans:
        empty = np.full(n_columns, np.nan)
        if not ks.any():
            no_atom = np.zeros(n_columns, bool)
            out.append(TailExponents(empty, empty, empty, empty, ks, constant, sparse, no_atom,
                                     level))  # fmt: skip
            continue
        rows = int(ks.max()) + 2  # X_(1) ... X_(k+2): the rows these estimates read
        gap = top[ks, columns] - top[ks + 1, columns]
        atom = (gap <= tolerance) & (ks > 0)  # tied values (within TIE_TOLERANCE) at the threshold
        ks = np.where(atom, 0, ks)
        kept = ks > 0
        k_kept = ks[kept]
        gamma, second = log_excess_moments(top[:rows, kept], k_kept)
        est = {name: empty.copy() for name in ("exp", "lo", "hi", "mom")}
        est["exp"][kept] = 1 / gamma
        est["lo"][kept], est["hi"][kept] = hill_interval(gamma, k_kept, level)
        est["mom"][kept] = moment_gamma(gamma, second)
        out.append(
            TailExponents(
                exponent=est["exp"],
                lower=est["lo"],
                upper=est["hi"],
                moment_gamma=est["mom"],
                k=ks,
                constant=constant,
                sparse=sparse,
                atom=atom,
                level=level,
            )
        )
    return out


def _floats(values: np.ndarray) -> list[float | None]:
    """Plain floats for JSON, None where not finite."""
    return [float(v) if np.isfinite(v) else None for v in values]


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    """The :data:`~sgnoise.tail_index.common.QUANTILES` of values, None where not finite."""
    return {q: v if np.isfinite(v) else None for q, v in quantiles(values).items()}


def _wilson(successes: int, trials: int, level: float = 0.95) -> list[float]:
    """Wilson (1927) score interval for a binomial proportion, [low, high]."""
    z = special.ndtri((1 + check_level(level)) / 2)
    p, z2 = successes / trials, z * z / trials
    centre = (p + z2 / 2) / (1 + z2)
    half = z * np.sqrt(p * (1 - p) / trials + z2 / (4 * trials)) / (1 + z2)
    return [float(max(centre - half, 0.0)), float(min(centre + half, 1.0))]


def summarise(grads: np.ndarray, *, seed: int = 0, level: float = 0.95) -> dict:
    """Do the columns of a per-example gradient matrix have infinite variance?

    Parameters
    ----------
    grads : ndarray, shape (n, n_columns)
        Per-example gradients: rows = examples, columns = coordinates (e.g.
        ``per_example_gradients(...).matrix`` or a layer's block of it), finite,
        at least 100 rows.
    seed : int
        Accepted for the interface the summaries of :mod:`sgnoise` share; this
        summary draws no random numbers (Hill with exact Gamma intervals, no
        resampling), so no value depends on it.
    level : float
        Confidence level of the per-column intervals and of the interval of the fraction.

    Returns
    -------
    dict
        JSON-serialisable (floats, ints, strings, lists, dicts; None where a
        value is not finite):

        - ``n_rows``, ``n_columns``, ``n_kept``; ``n_dropped`` = ``n_constant`` +
          ``n_sparse`` + ``n_atom`` (columns without a tail estimate, see
          :class:`TailExponents`);
        - ``method`` (one line), ``k_range`` ([fewest, most] order statistics
          used by a kept column: floor(sqrt(non-zero values))), ``level``;
        - ``tail_exponent_quantiles``: percentiles "5", "25", "50", "75", "95" of
          the Hill exponents of the kept columns;
        - ``fraction_infinite_variance``: fraction of kept columns whose exponent
          is credibly below 2 (upper end of its interval < 2);
        - ``fraction_infinite_variance_ci``: [low, high], Wilson interval at
          ``level``. It covers the sampling of coordinates: the fraction among all
          coordinates the columns were sampled from, each column's call taken as
          given. It does not cover the error of each call, nor the dependence
          between coordinates (it is too narrow for that), and with every
          coordinate taken it is wider than needed;
        - ``moment_gamma_quantiles``: the same percentiles of the moment estimates
          gamma_M; ``fraction_moment_gamma_negative``: fraction of kept columns with
          gamma_M < 0 (tails with a finite endpoint);
        - ``per_column``: per kept column, lists ``column`` (index into grads),
          ``k``, ``tail_exponent``, ``exponent_lower``, ``exponent_upper``,
          ``moment_gamma``: arrays for plots, n_kept values each.

    Raises
    ------
    ValueError
        grads not 2-D, fewer than 100 rows, not finite, or without a column to estimate.
    """
    del seed  # see the docstring: no randomness here
    return summarise_exponents(tail_exponents(grads, level=level), int(np.shape(grads)[0]))


def summarise_exponents(tails: TailExponents, n_rows: int) -> dict:
    """:func:`summarise` of exponents already estimated (e.g. a layer's columns of them,
    :meth:`TailExponents.select`), from ``n_rows`` examples; the same keys and errors."""
    level = tails.level
    kept = np.flatnonzero(tails.kept)
    n_columns = tails.k.size
    n_constant, n_sparse, n_atom = (
        int(m.sum()) for m in (tails.constant, tails.sparse, tails.atom)
    )
    if not kept.size:
        raise ValueError(
            f"no column to estimate: of {n_columns}, {n_constant} are constant, "
            f"{n_sparse} have fewer than {MIN_K**2} non-zero values and {n_atom} have an atom "
            f"(tied values) at their tail threshold"
        )
    calls = int(tails.infinite_variance.sum())
    moment = tails.moment_gamma[kept]
    return {
        "n_rows": n_rows,
        "n_columns": n_columns,
        "n_kept": int(kept.size),
        "n_dropped": n_constant + n_sparse + n_atom,
        "n_constant": n_constant,
        "n_sparse": n_sparse,
        "n_atom": n_atom,
        "method": "Hill on |column - mean|, k = floor(sqrt(non-zero values)), Gamma interval",
        "k_range": [int(tails.k[kept].min()), int(tails.k[kept].max())],
        "level": tails.level,
        "tail_exponent_quantiles": _percentiles(tails.exponent[kept]),
        "fraction_infinite_variance": calls / kept.size,
        "fraction_infinite_variance_ci": _wilson(calls, kept.size, level),
        "moment_gamma_quantiles": _percentiles(moment),
        "fraction_moment_gamma_negative": float(np.mean(moment < 0)),
        "per_column": {
            "column": kept.tolist(),
            "k": tails.k[kept].tolist(),
            "tail_exponent": _floats(tails.exponent[kept]),
            "exponent_lower": _floats(tails.lower[kept]),
            "exponent_upper": _floats(tails.upper[kept]),
            "moment_gamma": _floats(moment),
        },
    }


#: Thresholds of :func:`exponents_over_k`: k = floor(f sqrt(m)) for f = 2^-2, 2^-1.5, ..., 2^2.
K_FACTORS = tuple(2.0 ** (e / 2) for e in range(-4, 5))


def exponents_over_k(
    grads: np.ndarray, *, factors: tuple[float, ...] = K_FACTORS, level: float = 0.95
) -> list[dict]:
    """The Hill exponents of every column at several thresholds k (a Hill plot's numbers).

    A verdict that flips with k is no verdict (Drees, de Haan & Resnick 2000):
    :func:`tail_exponents` with k = floor(f sqrt(m)) (m a column's non-zero
    values, f = 1 the default rule) for each factor f, summarised over the
    columns kept at that f (k >= MIN_K: small f drops more columns as sparse).

    Returns
    -------
    list of dict
        :func:`summarise_over_k`'s, one per factor, increasing.
    """
    factors = tuple(sorted(factors))
    return summarise_over_k(tail_exponents_over_k(grads, factors, level=level), factors)


def summarise_over_k(tails: list[TailExponents], factors: tuple[float, ...]) -> list[dict]:
    """Per factor f (``tails[i]`` estimated at k = floor(f sqrt(m)), e.g. a layer's columns of
    :func:`tail_exponents_over_k`'s): ``k_factor``, ``k_range`` ([fewest, most] order
    statistics of a kept column, None without one), ``n_kept``, ``tail_exponent_quantiles``
    (percentiles "5" ... "95", None without a kept column), ``fraction_infinite_variance``
    (upper end of the interval < 2), ``fraction_finite_variance`` (lower end > 2); NaN
    without a kept column."""
    out = []
    for f, t in zip(factors, tails, strict=True):
        kept = t.kept
        n_kept = int(kept.sum())
        with np.errstate(invalid="ignore"):  # no column kept: NaN shares
            shares = [m.sum() / n_kept for m in (t.infinite_variance, kept & (t.lower > 2))]
        out.append(
            {
                "k_factor": f,
                "k_range": [int(t.k[kept].min()), int(t.k[kept].max())] if n_kept else None,
                "n_kept": n_kept,
                "tail_exponent_quantiles": _percentiles(t.exponent[kept]) if n_kept else None,
                "fraction_infinite_variance": float(shares[0]),
                "fraction_finite_variance": float(shares[1]),
            }
        )
    return out


def activity(grads: np.ndarray, *, census: Census | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each column's share of rows (examples) with a non-zero value (beyond
    :data:`~sgnoise.tail_index.common.TIE_TOLERANCE`), and whether it is constant: a pixel
    rarely lit or a unit rarely active gives a sparse column, whose minibatch noise reads
    heavy at any batch size. ``census``: grads' :func:`column_census`, if already made."""
    grads = _check_grads(grads)
    census = column_census(grads) if census is None else census
    return census.nonzero / grads.shape[0], census.constant


#: Columns whose bootstrap p-value :func:`power_law_fit` computes (a seeded sample): the
#: bootstrap refits each of them BOOTSTRAP times, the rest of the fit costs little.
BOOTSTRAP_COLUMNS = 128


def power_law_fit(
    grads: np.ndarray,
    *,
    bootstrap_columns: int | None = BOOTSTRAP_COLUMNS,
    seed: int = 0,
    census: Census | None = None,
) -> PowerLawTails:
    """The threshold-free verdict of every column (:mod:`sgnoise.tail_index.power_law`):
    a power-law tail of |column - its mean| above an x_min chosen by KS distance, its
    bootstrap goodness of fit (for ``bootstrap_columns`` of them, None: all) and its
    likelihood ratio against a lognormal tail; a column's sample is its values that are not
    zeros (within :data:`~sgnoise.tail_index.common.TIE_TOLERANCE`), as for Hill.
    ``census``: grads' :func:`column_census`, if already made."""
    grads = _check_grads(grads)
    census = column_census(grads) if census is None else census
    top = _select(grads, census, stored_depth(census.nonzero))
    return power_law_tails_of_top(
        top, census.nonzero, bootstrap_columns=bootstrap_columns, seed=seed
    )


def hill_and_power_law(
    grads: np.ndarray,
    factors: tuple[float, ...],
    *,
    level: float = 0.95,
    census: Census | None = None,
    bootstrap_columns: int | None = BOOTSTRAP_COLUMNS,
    seed: int = 0,
) -> tuple[list[TailExponents], PowerLawTails]:
    """:func:`tail_exponents_over_k` and :func:`power_law_fit` (``bootstrap_columns`` and
    ``seed`` as there) from one selection of each column's largest values, as many as the
    deeper of the two needs (the power law's 16 sqrt(m) + 8 against Hill's 4 sqrt(m) + 2
    at f = 4): the numbers of the two calls, bit for bit, one pass over the matrix fewer."""
    grads, census, plans = _prepare(grads, factors, census)
    depth = np.maximum(_hill_depth(plans), stored_depth(census.nonzero))
    top = _select(grads, census, depth)
    fit = power_law_tails_of_top(
        top, census.nonzero, bootstrap_columns=bootstrap_columns, seed=seed
    )
    return _estimates(top, census, plans, level), fit


def summarise_power_law(fit: PowerLawTails) -> dict:
    """The shares of a :class:`~sgnoise.tail_index.power_law.PowerLawTails` (e.g. a layer's
    columns, :meth:`~sgnoise.tail_index.power_law.PowerLawTails.select`), JSON-ready:
    ``n_fitted`` (columns with enough non-zero values), ``fraction_infinite_variance`` and
    its Wilson interval ``fraction_infinite_variance_ci`` (the verdict's share of the
    fitted columns), ``n_tested`` and ``fraction_plausible`` (bootstrap p >= 0.1, of the
    columns with a p-value), ``fraction_lognormal`` (a lognormal tail favoured),
    ``tail_exponent_quantiles`` and ``k_over_sqrt_m_quantiles`` (the tail sizes chosen,
    in units of sqrt(m)); NaN and None without a fitted column."""
    fitted = fit.fitted
    n_fitted, n_tested = int(fitted.sum()), int(fit.tested.sum())
    if not n_fitted:
        nan = float("nan")
        return {"n_fitted": 0, "n_tested": 0, "fraction_infinite_variance": nan,
                "fraction_infinite_variance_ci": [nan, nan], "fraction_plausible": nan,
                "fraction_lognormal": nan, "tail_exponent_quantiles": None,
                "k_over_sqrt_m_quantiles": None}  # fmt: skip
    calls = int(fit.infinite_variance.sum())
    return {
        "n_fitted": n_fitted,
        "n_tested": n_tested,
        "fraction_infinite_variance": calls / n_fitted,
        "fraction_infinite_variance_ci": _wilson(calls, n_fitted, fit.level),
        "fraction_plausible": fit.plausible.sum() / n_tested if n_tested else float("nan"),
        "fraction_lognormal": float(fit.lognormal.sum() / n_fitted),
        "tail_exponent_quantiles": _percentiles(fit.exponent[fitted]),
        "k_over_sqrt_m_quantiles": _percentiles(fit.n_tail[fitted] / np.sqrt(fit.m[fitted])),
    }


def power_law_shares(grads: np.ndarray, *, seed: int = 0) -> dict:
    """The threshold-free verdict as shares of the coordinates (what ``analyse --per-example``
    reports): :func:`summarise_power_law` of :func:`power_law_fit`."""
    return summarise_power_law(power_law_fit(grads, seed=seed))
