"""A verdict in words beside the numbers of :mod:`sgnoise.analyse`.

Each function reads a result dict of :mod:`sgnoise.analyse` (the JSON's keys,
nothing recomputed) and returns a JSON-ready ``verdict``: a ``conclusion``
(one word), a ``summary`` (one sentence) and ``findings``, one per question,
each ``{"call": <short code>, "text": <a sentence with the numbers>}``. The
questions are the traps of reading a tail index:

- ``pooled``: is the pooled alpha below its Gaussian surrogate (heavy tails),
  or at it? At it, pooling alone cannot decide: Gaussian coordinates of unequal
  variances read below 2 when pooled (scale mixing), and heavy-tailed columns
  pull their surrogate down as well; the calibrated alpha decides.
- ``calibrated``: is the calibrated per-coordinate alpha credibly below 2
  (its interval's upper end < 2)? The raw standardised reading is pulled to 2
  by few rows; the calibrated one is not.
- ``per_column``: are the columns' own alphas shifted below, or spread wider
  than, those of Gaussian columns of as many rows?
- ``sparse``: how many coordinates are mostly one repeated value (sparse
  per-example gradients)? Such columns read heavy at any batch size.
- ``variance`` (per-example input): finite or infinite variance, and the
  range of Hill thresholds k over which that call holds (a call that flips
  with k is no verdict); ``threshold_free``: the same question answered by a
  power-law fit whose threshold the data choose
  (:func:`sgnoise.per_example.power_law_shares`); when the two disagree there
  is no verdict.
"""

from __future__ import annotations

import math

#: A share of sparse coordinates above this is mentioned in the summary.
SPARSE_WORTH_SAYING = 0.05
#: Per-column spread (95% - 5% quantile) this many times the Gaussian columns' is "wider".
WIDER_SPREAD = 1.5
#: The pooled surrogate at or above this reads as Gaussian (no scale mixing to speak of); a
#: calibrated alpha credibly below 2 but at or above it is "near-gaussian", not heavy-tailed.
NEAR_GAUSSIAN = 1.9
#: The pooled alpha is "below" its surrogate when its interval ends this far below it (the
#: surrogate is itself an estimate: a closed-form expectation or one seeded draw).
SURROGATE_MARGIN = 0.02


def _f(x: float | None) -> str:
    return "inf" if x is None or not math.isfinite(x) else f"{x:.2f}"


def _ci(pair) -> str:
    return f"[{_f(pair[0])}, {_f(pair[1])}]"


def _pooled(r: dict, heavy: bool) -> dict:
    """Pooled alpha against its surrogate; at it, the per-coordinate reading (``heavy``)
    decides between heavy tails and scale mixing (the surrogate takes each column's
    sample variance, which heavy tails spread too, so it cannot decide alone)."""
    a, (lo, hi), s = r["alpha_pooled"], r["alpha_pooled_ci"], r["surrogate_pooled"]
    reading = f"pooled alpha {_f(a)} {_ci((lo, hi))} against its Gaussian surrogate {_f(s)}"
    if hi is not None and hi < s - SURROGATE_MARGIN:
        return {
            "call": "heavy tails",
            "text": f"{reading}: below it, heavier than unequal variances explain",
        }
    if s >= NEAR_GAUSSIAN:
        return {"call": "gaussian", "text": f"{reading}: at it, and both near 2"}
    if heavy:
        return {
            "call": "heavy tails",
            "text": f"{reading}: at it, and the calibrated alpha is below 2: heavy tails "
            "(they spread the columns' variances too, which pulls the surrogate down)",
        }
    return {
        "call": "scale mixing",
        "text": f"{reading}: at it, and the calibrated alpha is at or near 2: Gaussian "
        "coordinates of unequal variances read this low when pooled (scale mixing), not heavy "
        "tails",
    }


def _calibrated(r: dict) -> dict:
    c, (lo, hi) = r["alpha_calibrated"], r["alpha_calibrated_ci"]
    reading = f"calibrated alpha {_f(c)} {_ci((lo, hi))}"
    few = (
        f" (wide: {r['n_rows']} rows)"
        if hi is not None and lo is not None and hi - lo > 0.3
        else ""
    )
    if r["below_grid"]:
        return {
            "call": "below 2",
            "text": f"{reading}: below the calibrated range, about {_f(c)} or less (a bound)",
        }
    if r["above_grid"] or hi is None or hi >= 2:
        return {
            "call": "consistent with 2",
            "text": f"{reading}{few}: its interval reaches 2, each coordinate's noise is "
            "consistent with a Gaussian",
        }
    if c >= NEAR_GAUSSIAN:
        return {
            "call": "slightly below 2",
            "text": f"{reading}{few}: credibly below 2 but within {2 - NEAR_GAUSSIAN:.1f} of it: "
            "close to Gaussian (a few heavy or sparse coordinates can do this)",
        }
    return {
        "call": "below 2",
        "text": f"{reading}{few}: credibly below 2, each coordinate's noise heavier than Gaussian",
    }


def _per_column(r: dict) -> dict:
    q, g = r["alpha_per_column_quantiles"], r["alpha_per_column_gaussian_quantiles"]
    if q is None:
        return {
            "call": "not measured",
            "text": f"per-column alpha needs >= 1000 rows, got {r['n_rows']}",
        }
    spread, g_spread = q["95"] - q["5"], g["95"] - g["5"]
    reading = (
        f"per-column alpha median {_f(q['50'])}, 5-95% {_f(q['5'])}-{_f(q['95'])}, against "
        f"Gaussian columns' {_f(g['50'])}, {_f(g['5'])}-{_f(g['95'])}"
    )
    wider = spread > WIDER_SPREAD * g_spread
    tail = "; the spread is wider: the tail index differs between coordinates" if wider else ""
    if q["50"] < g["5"]:
        return {"call": "heavier", "text": f"{reading}: most columns heavier{tail}"}
    if q["5"] < g["5"]:
        return {"call": "heavier minority", "text": f"{reading}: a minority heavier{tail}"}
    return {"call": "like gaussian", "text": f"{reading}: like Gaussian columns{tail}"}


def _sparse(share: float, what: str) -> dict:
    call = "many" if share > SPARSE_WORTH_SAYING else "few"
    text = f"{share:.1%} of the coordinates are {what}"
    if call == "many":
        text += ": such columns read heavy at any batch size; judge the dense ones"
    return {"call": call, "text": text, "share": share}


def noise_verdict(r: dict) -> dict:
    """The verdict on :func:`sgnoise.analyse.analyse_noise`'s result."""
    calibrated = _calibrated(r)
    findings = {
        "pooled": _pooled(r, calibrated["call"] == "below 2"),
        "calibrated": calibrated,
        "per_column": _per_column(r),
        "sparse": _sparse(r["sparse_share"], "mostly one repeated value (sparse)"),
    }
    conclusion, summary = {
        "below 2": ("heavy-tailed", "Heavy-tailed per coordinate"),
        "slightly below 2": ("near-gaussian", "Close to Gaussian per coordinate"),
        "consistent with 2": ("gaussian", "Consistent with Gaussian per coordinate"),
    }[calibrated["call"]]
    summary += f" ({calibrated['text'].split(':')[0]})"
    if findings["pooled"]["call"] == "scale mixing":
        summary += "; the pooled alpha below 2 is scale mixing"
    if findings["sparse"]["call"] == "many":
        summary += f"; {r['sparse_share']:.0%} sparse coordinates weigh on it"
    return {"conclusion": conclusion, "summary": summary + ".", "findings": findings}


def _variance_call(row: dict) -> str:
    if row["fraction_infinite_variance"] > 0.5:
        return "infinite"
    if row["fraction_finite_variance"] > 0.5:
        return "finite"
    return "undecided"


def _threshold_free(p: dict, hill_call: str) -> dict:
    """The power-law fit with a data-chosen x_min (no k): its majority call, against Hill's."""
    share, lognormal = p["fraction_infinite_variance"], p["fraction_lognormal"]
    if p["n_fitted"] == 0 or math.isnan(share):
        return {"call": "not measured", "text": "no coordinate with enough non-zero values"}
    call = "infinite" if share > 0.5 else "finite"
    text = (
        f"power law above a data-chosen x_min (Clauset, Shalizi & Newman): infinite variance "
        f"in {share:.0%} of {p['n_fitted']} coordinates, a lognormal tail (all moments finite) "
        f"favoured in {lognormal:.0%}"
    )
    if not math.isnan(p["fraction_plausible"]):
        text += (
            f"; a plausible power law in {p['fraction_plausible']:.0%} of {p['n_tested']} tested"
        )
    if hill_call in ("infinite", "finite") and call != hill_call:
        return {"call": "disagrees", "text": f"{text}: most coordinates {call}, unlike Hill's call"}
    return {"call": call, "text": text}


def _factor(f: float) -> str:
    return "sqrt(m)" if f == 1 else f"{f:.2g} sqrt(m)"


def held_range(by_k: list[dict]) -> tuple[str, list[dict], list[str]]:
    """The variance call of most coordinates at k = sqrt(m) (the factor nearest 1 with a kept
    column), the rows of ``by_k`` (:func:`sgnoise.per_example.summarise_over_k`'s,
    increasing k) over which that call holds without a break, and the factors where the
    opposite call is made (a call that flips with k is no verdict)."""
    rows = [row for row in by_k if row["n_kept"]]
    middle = min(rows, key=lambda row: abs(math.log(row["k_factor"])))
    call = _variance_call(middle)
    lo = hi = rows.index(middle)
    while lo > 0 and _variance_call(rows[lo - 1]) == call:
        lo -= 1
    while hi < len(rows) - 1 and _variance_call(rows[hi + 1]) == call:
        hi += 1
    opposite = {"infinite": "finite", "finite": "infinite"}.get(call)
    flips = [_factor(row["k_factor"]) for row in rows if _variance_call(row) == opposite]
    return call, rows[lo : hi + 1], flips


def per_example_verdict(r: dict) -> dict:
    """The verdict on :func:`sgnoise.analyse.analyse_per_example`'s result: the variance call
    of most coordinates at the default threshold k = sqrt(m), and the thresholds of ``by_k``
    (k = f sqrt(m)) over which it holds (:func:`held_range`)."""
    rows = [row for row in r["by_k"] if row["n_kept"]]
    call, held, flips = held_range(r["by_k"])
    infinite = [row["fraction_infinite_variance"] for row in rows]
    words = {
        "infinite": "infinite variance in most coordinates",
        "finite": "finite variance in most coordinates",
        "undecided": "neither finite nor infinite variance in most coordinates",
    }[call]
    span = f"k = {_factor(held[0]['k_factor'])} to {_factor(held[-1]['k_factor'])}"
    tried = f"{_factor(rows[0]['k_factor'])} to {_factor(rows[-1]['k_factor'])}"
    opposite = {"infinite": "finite", "finite": "infinite"}.get(call)
    conclusion = "undecided" if call == "undecided" or flips else f"{call} variance"
    if len(held) == len(rows):
        where = f"at every k tried ({span})"
    elif flips:
        where = f"for {span}, but {opposite} at k = {', '.join(flips)}: no verdict"
    else:
        where = f"for {span} (tried {tried}; undecided at the others)"
    share = (
        f"credibly infinite in {min(infinite):.0%}-{max(infinite):.0%} of the coordinates "
        f"over k = {tried}"
    )
    findings = {
        "variance": {
            "call": call,
            "text": f"{words} at k = sqrt(m), {where}; {share}",
            "k_factors": [held[0]["k_factor"], held[-1]["k_factor"]],
            "k_range": [held[0]["k_range"][0], held[-1]["k_range"][1]],
        },
        "threshold_free": _threshold_free(r["power_law"], call),
        "sparse": _sparse(r["sparse_share"], "sparse (under 5% non-zero values)"),
    }
    if findings["threshold_free"]["call"] == "disagrees":
        conclusion = "undecided"
        where += "; the threshold-free fit disagrees: no verdict"
    summary = f"{words[0].upper()}{words[1:]}, {where}"
    if findings["sparse"]["call"] == "many":
        summary += f"; {r['sparse_share']:.0%} sparse coordinates"
    return {"conclusion": conclusion, "summary": summary + ".", "findings": findings}
