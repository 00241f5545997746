"""Tail-index (alpha) estimators for symmetric alpha-stable samples.

A symmetric alpha-stable law SaS(alpha) (Samorodnitsky & Taqqu 1994,
parameterisation S1 with beta = 0, the one ``scipy.stats.levy_stable`` uses by
default) has tail index alpha in (0, 2]: alpha = 2 is the Gaussian, alpha < 2
has power-law tails P(|X| > t) ~ t^-alpha. The default estimator is that of
Mohammadi, Mohammadpour & Ogata (2015), as used by Simsekli et al. (2019,
Corollary 2.4), averaged over random partitions of the samples into blocks.
Estimates are returned unclipped.

Submodules:

- :mod:`.estimators`: :func:`estimate_alpha` and :func:`alpha_ci`, by any of
  :data:`METHODS`; its notes cover the estimator, block size, sample order
  and reporting.
- :mod:`.classical`: Hill, Pickands, moment (vectorised, ``axis``; Hill's
  interval) and McCulloch, for comparison and for per-example tails
  (:mod:`sgnoise.per_example`).
- :mod:`.per_column`: :func:`column_alpha`, Mohammadi's estimator on every
  column (``axis``), and :func:`per_column_alpha`, the quantiles of those
  estimates beside Gaussian columns'.
- :mod:`.streaming`: :class:`AlphaAccumulator`, the default estimator over
  data seen chunk by chunk.
- :mod:`.summaries`: :func:`summarise_noise` and :func:`summarise_layers`, the
  alpha of a gradient-noise matrix with intervals and null levels
  (:func:`standardised_alpha`: its standardised alpha alone), using
  :mod:`.columns` (:func:`standardise`, :func:`gaussian_surrogate`),
  :mod:`.pooling` (column blocks fed to accumulators, per layer and pooled)
  and :mod:`.nulls` (the surrogates' expected estimates in closed form).
- :mod:`.common` (:data:`QUANTILES`, argument checks, intervals): shared by
  all of them; the jobs run on the process's worker threads
  (:mod:`sgnoise.threads`).
"""

from sgnoise.tail_index.columns import gaussian_surrogate, standardise
from sgnoise.tail_index.common import MIN_SAMPLES, QUANTILES
from sgnoise.tail_index.estimators import (
    DEFAULT_METHOD,
    INTERVAL_METHODS,
    MEDIAN_K1,
    METHODS,
    alpha_ci,
    estimate_alpha,
)
from sgnoise.tail_index.per_column import (
    MIN_COLUMN_ROWS,
    column_alpha,
    per_column_alpha,
    per_column_alpha_by_block,
)
from sgnoise.tail_index.streaming import AlphaAccumulator
from sgnoise.tail_index.summaries import standardised_alpha, summarise_layers, summarise_noise

__all__ = [
    "DEFAULT_METHOD",
    "INTERVAL_METHODS",
    "MEDIAN_K1",
    "METHODS",
    "MIN_COLUMN_ROWS",
    "MIN_SAMPLES",
    "QUANTILES",
    "AlphaAccumulator",
    "alpha_ci",
    "column_alpha",
    "estimate_alpha",
    "gaussian_surrogate",
    "per_column_alpha",
    "per_column_alpha_by_block",
    "standardise",
    "standardised_alpha",
    "summarise_layers",
    "summarise_noise",
]
