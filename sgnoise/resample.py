"""Resampled minibatch noise: many minibatches drawn at random from per-example gradients.

:func:`resampled_noise` draws M minibatches of B examples each (each
minibatch a uniform subset, independently of the others) and returns their
noise, minibatch gradient minus full gradient (Simsekli et al. 2019,
Section 2); :func:`resampled_noises` does several batch sizes in few passes.
Unlike the K = n/B disjoint minibatches of :func:`sgnoise.noise.noise_pass`, M
can be as large as wanted, so that each coordinate has enough rows for its own
alpha (:mod:`sgnoise.tail_index.per_column`) or a calibrated one
(:mod:`sgnoise.calibration`).

References
----------
Simsekli, Sagun & Gurbuzbalaban (2019), "A Tail-Index Analysis of Stochastic
Gradient Noise in Deep Neural Networks", ICML, Section 2.
Bentley & Floyd (1987), "Programming pearls: a sample of brilliance", CACM 30:754-757.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
from scipy import sparse

from sgnoise import threads
from sgnoise.tail_index.common import check_int, check_seed, float_matrix

_FLOYD_VALUES = 1 << 18  # subset members resolved at once by _subsets (a few MB)
_GROUP_MEMBERS = 1 << 20  # subset members of the batch sizes resampled_noises sums in one pass
_SUM_COLUMNS = 64  # columns of one chunk of resampled_noises' sums (15 MB at n = 60,000)
_SELECTIONS = 2  # selections kept (a train and a test split's: 4 MB each at M = 1,000, B = 500)
_PIECE_MEMBERS = 1 << 19  # nonzeros of a selection's piece (B = 500 at M = 1,000: one piece)


def _floyd_draws(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """The draws of :func:`_subsets`, shape (count, size): column k uniform in [0, n - size + k]."""
    return rng.integers(0, np.arange(n - size + 1, n + 1), size=(count, size))


def _floyd(t: np.ndarray, n: int) -> np.ndarray:
    """The subsets of range(n) that Floyd's algorithm makes from the draws t (see
    :func:`_subsets`); each row on its own."""
    size = t.shape[1]
    k = np.arange(size)
    key_type = np.int32 if n * size < 2**31 else np.int64
    value, position = np.divmod(np.sort((t * size + k).astype(key_type), axis=1), size)
    taken = np.zeros(t.shape, bool)  # t_k taken before step k: step k takes its j
    rows, later = np.nonzero(value[:, 1:] == value[:, :-1])
    taken[rows, position[rows, later + 1]] = True
    earlier = t - (n - size)  # the step whose j is t_k, if it comes before step k
    rows, steps = np.nonzero((earlier >= 0) & (earlier < k))
    earlier, repeated = earlier[rows, steps], taken[rows, steps]
    while True:
        linked = repeated | taken[rows, earlier]
        if np.array_equal(linked, taken[rows, steps]):
            break
        taken[rows, steps] = linked
    return np.where(taken, n - size + k, t)


def _subsets(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` independent uniform subsets of ``size`` of range(n), shape (count, size).

    Floyd's algorithm (Bentley & Floyd 1987): for j = n - size + k, k = 0, ...,
    size - 1, draw t_k uniform in [0, j] and take t_k, or j if t_k is taken
    already. The t of many subsets are drawn as one array (:func:`_floyd_draws`),
    and their steps are resolved for all of them at once instead of one after
    another (:func:`_floyd`): t_k is taken before step k exactly when an earlier t_i
    equals it (the value t_i is taken from step i on, whatever step i took), or
    when an earlier step i took its own j = n - size + i = t_k because t_i was
    taken. The first case is found by sorting each row's (t_k, k), the second by
    following those rare links until nothing changes. O(count size log size)
    work, no Python loop over k; subsets are drawn and resolved
    :data:`_FLOYD_VALUES` members at a time (each on its own, from the stream in
    order: the same subsets), so the temporaries stay a few MB. int32 indices
    where n allows.
    """
    out = np.empty((count, size), np.int32 if n < 2**31 else np.int64)
    step = max(1, _FLOYD_VALUES // size)
    for k in range(0, count, step):  # the draws in pieces too: the same stream, in order
        out[k : k + step] = _floyd(_floyd_draws(n, size, out[k : k + step].shape[0], rng), n)
    return out


def _selection(
    n: int, batch_size: int, n_minibatches: int, seed: int, dtype, keep: bool = False
) -> list[tuple]:
    """The (M x n) matrix of weight 1/B at (k, i) for each example i of minibatch k, as
    (rows, piece) pairs: the piece of rows ``rows`` (minibatches), in compressed-column
    form (one column per example), of at most :data:`_PIECE_MEMBERS` nonzeros each
    (or one minibatch each, if B is larger).

    Made piece by piece from one seeded stream (the same subsets as all at once), so
    that making it never holds more than a piece's temporaries (the 2M nonzeros of
    B = 2,048 made whole took 55 MB besides its 16 MB). With ``keep``, one of a single
    piece is kept for the next call with the same arguments (the last
    :data:`_SELECTIONS` such, read-only): a study's checkpoints resample the same n
    examples with the same seed at the training batch size, and making it costs about
    a third of the sums it serves (the sizes of a batch scan are made anew each time:
    kept, they would push the training batch size's out).
    """
    if keep and batch_size * n_minibatches <= _PIECE_MEMBERS:
        return _kept_selection(n, batch_size, n_minibatches, seed, dtype)
    return _new_selection(n, batch_size, n_minibatches, seed, dtype)


def _new_selection(n: int, batch_size: int, n_minibatches: int, seed: int, dtype) -> list:
    rng = np.random.default_rng(seed)
    step = max(1, _PIECE_MEMBERS // batch_size)
    pieces = []
    for k in range(0, n_minibatches, step):
        count = min(step, n_minibatches - k)
        rows = _subsets(n, batch_size, count, rng).ravel()
        weights = np.full(rows.size, 1 / batch_size, dtype)
        starts = np.arange(0, rows.size + 1, batch_size)
        piece = sparse.csr_array((weights, rows, starts), shape=(count, n)).tocsc()
        pieces.append((slice(k, k + count), piece))
    return pieces


@functools.lru_cache(maxsize=_SELECTIONS)
def _kept_selection(n: int, batch_size: int, n_minibatches: int, seed: int, dtype) -> list:
    pieces = _new_selection(n, batch_size, n_minibatches, seed, dtype)
    for _, piece in pieces:
        for array in (piece.data, piece.indices, piece.indptr):
            array.flags.writeable = False
    return pieces


def resampled_noise(
    per_example, batch_size: int, n_minibatches: int = 1000, *, seed: int = 0
) -> np.ndarray:
    """Minibatch gradient noise drawn from per-example gradients.

    Each of M minibatches is B examples drawn at random without replacement
    (minibatches independently of each other), and its noise is

        u_k = (1/B) sum_{i in S_k} g_i - (1/n) sum_{i=1}^n g_i ,

    the minibatch gradient minus the full gradient of the n examples
    (Simsekli et al. 2019, Section 2). Unlike the K = n/B disjoint minibatches
    of :func:`sgnoise.noise.noise_pass`, M can be as large as wanted (the
    rows are i.i.d. given the examples), which per-coordinate estimates
    need (:func:`sgnoise.tail_index.per_column.per_column_alpha`).

    Parameters
    ----------
    per_example : array_like, shape (n_examples, n_coords)
        Per-example gradients g_i (of sampled coordinates), finite.
    batch_size : int
        B, in [1, n_examples - 1].
    n_minibatches : int
        M >= 1.
    seed : int
        Seed of the subsets; the same seed gives the same noise.

    Returns
    -------
    ndarray, shape (n_minibatches, n_coords)
        u_k, float32 if ``per_example`` is float32, else float64.

    Notes
    -----
    Computed as (1/B) sum_{i in S_k} (g_i - mean g), summed in the order of
    the examples (i ascending), in the dtype of the matrix (centring first
    keeps the full-gradient offset out of the float32 sums). Cost: the
    subsets take O(M B log B) steps (:func:`_subsets`), and the sums one
    sparse (M x n) by dense (n x d) product with M B nonzeros, O(M B d), taken
    example by example (a compressed-column product): each example's row is
    read once and added to the minibatches that hold it, whose sums stay in
    cache, so the matrix is streamed once instead of gathered at random M B
    times. :func:`resampled_noises` does several batch sizes in one pass.
    """
    return next(resampled_noises(per_example, (batch_size,), n_minibatches, seed=seed))


def resampled_noises(
    per_example, batch_sizes, n_minibatches: int = 1000, *, seed: int = 0
) -> Iterator[np.ndarray]:
    """:func:`resampled_noise` for each batch size, in order, from few passes over ``per_example``.

    The same numbers as one call per size with the same seed. The sizes are
    taken in groups of at most :data:`_GROUP_MEMBERS` subset members in all
    (or one size alone), one pass over the matrix per group: the matrix is
    read in chunks of :data:`_SUM_COLUMNS` columns (on the process's worker
    threads), each centred into a row-major buffer that is added to every
    size's minibatches of the group. No centred copy of the whole matrix is
    made (the Recorder's 60,000 x 500 float32 matrix is 120 MB), and a group's
    selections and noises are all that is held besides it.
    """
    g = float_matrix(per_example, "per_example")
    n = g.shape[0]
    sizes = [check_int(b, "batch_size", 1, n - 1) for b in batch_sizes]
    n_minibatches = check_int(n_minibatches, "n_minibatches", 1)
    check_seed(seed)
    return _grouped_noises(g, sizes, n_minibatches, seed)  # bad input raises above, at the call


def _grouped_noises(g: np.ndarray, sizes: list[int], n_minibatches: int, seed: int) -> Iterator:
    """The generator of :func:`resampled_noises`, its arguments checked."""
    n, d = g.shape
    mean = threads.column_means(g).astype(g.dtype)
    chunks = threads.column_chunks(d, _SUM_COLUMNS)
    groups: list[list[int]] = []
    for b in sizes:
        if groups and (sum(groups[-1]) + b) * n_minibatches <= _GROUP_MEMBERS:
            groups[-1].append(b)
        else:
            groups.append([b])
    for group in groups:
        selections = [  # the first size (a study's training batch size) kept for next time
            _selection(n, b, n_minibatches, seed, g.dtype, keep=b == sizes[0]) for b in group
        ]
        outs = [np.empty((n_minibatches, d), g.dtype) for _ in group]

        def sums(c: slice, selections=selections, outs=outs) -> None:
            block = np.subtract(g[:, c], mean[c], out=np.empty((n, c.stop - c.start), g.dtype))
            for pieces, out in zip(selections, outs, strict=True):
                for rows, piece in pieces:
                    out[rows, c] = piece @ block

        for _ in threads.in_order(functools.partial(sums, c) for c in chunks):
            pass
        del selections
        while outs:
            yield outs.pop(0)
