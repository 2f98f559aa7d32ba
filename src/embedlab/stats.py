"""Bootstrap statistics over evaluation pairs: score arrays in, intervals and paired tests out.

A single number on 1,500 pairs hides its noise, so each model's per-pair scores (``data/eval_scores``) are resampled:
a seeded percentile bootstrap gives each Spearman score a 95 % confidence interval (:func:`bootstrap_ci`, the
``ci95`` of the metrics files, :func:`intervals`), and a paired bootstrap on the same resamples tells whether the gap
between two models on the same pairs holds (:func:`paired_bootstrap`, the report's comparisons).

Nothing here imports sentence-transformers or the STS code: the training stages depend on ``evaluation.py`` only,
so a change to the tests here reruns the evaluate and report stages, never a training run.

What scipy does and does not do for us (scipy 1.17, measured on ``data/eval_scores``):

* Resampling: ``scipy.stats.bootstrap(..., paired=True, vectorized=True, batch=_CHUNK, method="percentile")`` with
  ``rng=numpy.random.default_rng(seed)`` draws exactly our former (chunk x n) index matrices, so its
  ``bootstrap_distribution`` is bit for bit the one the committed CIs and p-values came from; it is used here.
* Its ``confidence_interval`` is not: its percentile levels differ in the last bit (CIs off by up to 1.1e-16) and a
  NaN resample (average precision on a resample with one class) makes the whole interval NaN with a warning, where
  :func:`_interval` drops it. Its default BCa interval moves the CIs by 4e-4 to 1.7e-3 (baseline STS-B validation
  [0.852040, 0.881672] -> [0.850531, 0.881148], a twentieth of the width; paired Δ by 3e-5) and needs n
  jackknife passes. It has no p-value for a paired difference; :func:`paired_bootstrap` computes it from the
  distribution.
* Statistic: ranks come from ``scipy.stats.rankdata`` (ties averaged, as ``spearmanr``). The Pearson step stays
  :func:`_pearson_rows`: ``scipy.stats.pearsonr(x, y, axis=1)`` agrees within 7.8e-16 but differs in the last bits
  on 3 rows in 4, which would change every committed CI's last digit, and it is 3x slower (a p-value per row);
  ``spearmanr(axis=1)`` correlates every column with every other (a 2,000 x 2,000 matrix per 1,000 resamples).
  :func:`score` likewise equals ``spearmanr`` / ``pearsonr`` within 1.1e-16 (tests/test_report.py checks 1e-12)
  but keeps the resamples' code path, so a point estimate and its interval come from the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CI_KEY = "ci95"  # top-level key of the metrics file: {set: {"spearman_cosine": {"low": .., "high": ..}}}
CI_METRIC = "spearman_cosine"  # the chapter's headline number; the only one given an interval

# Resampling works on score arrays only: (resamples x n) index matrices in chunks, one metric value per row.
_CHUNK = 200  # resamples per chunk: bounds memory at ~chunk x n floats; also fixes the draws (committed numbers)


def _pearson_rows(x, y):
    import numpy as np

    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))


def _spearman_rows(gold, pred):
    """Spearman per row = Pearson of average ranks (ties averaged, as ``scipy.stats.spearmanr`` does)."""
    from scipy.stats import rankdata

    return _pearson_rows(rankdata(gold, axis=1), rankdata(pred, axis=1))


def _average_precision_rows(gold, pred):
    import numpy as np
    from sklearn.metrics import average_precision_score

    out = np.full(len(gold), np.nan)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if 0 < g.sum() < len(g):  # AP needs both classes in the resample
            out[i] = average_precision_score(g, p)
    return out


ROW_METRICS: dict[str, Callable] = {
    "spearman": _spearman_rows,
    "pearson": _pearson_rows,
    "average_precision": _average_precision_rows,
}


def score(gold, pred, metric: str = "spearman") -> float:
    """``metric`` of predictions against gold on all pairs (same code path as the resamples)."""
    import numpy as np

    return float(_row_metric(metric)(np.asarray(gold, float)[None, :], np.asarray(pred, float)[None, :])[0])


def _row_metric(metric: str) -> Callable:
    if metric not in ROW_METRICS:
        raise ValueError(f"unknown bootstrap metric {metric!r}; use one of {sorted(ROW_METRICS)}")
    return ROW_METRICS[metric]


def _distribution(statistic: Callable, samples: tuple, resamples: int, seed: int):
    """``statistic(*rows)`` on ``resamples`` seeded paired resamples of ``samples`` (1-D arrays of one length).

    ``scipy.stats.bootstrap`` draws the (chunk x n) index matrices; only its distribution is used (module docstring).
    """
    import warnings

    import numpy as np
    from scipy.stats import DegenerateDataWarning, bootstrap

    n = len(samples[0])
    if n < 2:
        raise ValueError(f"bootstrap needs at least 2 pairs, got {n}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    with warnings.catch_warnings():  # scipy's own interval of a distribution with NaNs: not used
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap(
            samples,
            lambda *rows, axis=-1: statistic(*rows),  # rows: (chunk x n), one resample per row
            n_resamples=resamples,
            batch=_CHUNK,
            vectorized=True,
            paired=True,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return np.asarray(result.bootstrap_distribution, dtype=np.float64)


def _interval(values, confidence: float) -> tuple[float, float]:
    import numpy as np

    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    gold, pred, *, metric: str = "spearman", resamples: int = 1000, seed: int = 42, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over the pairs (resampled with replacement, seeded)."""
    import numpy as np

    gold, pred = np.asarray(gold, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if gold.shape != pred.shape or gold.ndim != 1:
        raise ValueError(f"gold and pred must be 1-D of one length, got {gold.shape} and {pred.shape}")
    values = _distribution(_row_metric(metric), (gold, pred), resamples, seed)
    return _interval(values, confidence)


def paired_bootstrap(
    gold,
    pred_a,
    pred_b,
    *,
    metric: str = "spearman",
    resamples: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> dict[str, float | bool]:
    """Does model b differ from model a on the same pairs? Both are scored on the *same* resamples.

    Returns the observed difference ``delta`` = metric(b) - metric(a), its percentile interval, a two-sided
    bootstrap p-value (twice the share of resampled differences on the other side of zero) and ``holds``: the
    interval excludes zero, i.e. the sign of the difference survives resampling the evaluation pairs.
    """
    import numpy as np

    gold = np.asarray(gold, dtype=np.float64)
    a, b = np.asarray(pred_a, dtype=np.float64), np.asarray(pred_b, dtype=np.float64)
    if not (gold.shape == a.shape == b.shape) or gold.ndim != 1:
        raise ValueError(f"gold, pred_a, pred_b must be 1-D of one length: {gold.shape}, {a.shape}, {b.shape}")
    fn = _row_metric(metric)
    deltas = _distribution(lambda g, pa, pb: fn(g, pb) - fn(g, pa), (gold, a, b), resamples, seed)
    score_a, score_b = score(gold, a, metric), score(gold, b, metric)
    delta = score_b - score_a
    low, high = _interval(deltas, confidence)
    finite = deltas[np.isfinite(deltas)]
    if finite.size == 0 or delta == 0:
        p_value = 1.0
    else:
        other_side = (finite <= 0) if delta > 0 else (finite >= 0)
        p_value = float(min(1.0, 2 * other_side.mean()))
    return {
        "score_a": score_a,
        "score_b": score_b,
        "delta": delta,
        "low": low,
        "high": high,
        "p_value": p_value,
        "holds": bool(low > 0 or high < 0),
    }


def intervals(pair_scores, *, resamples: int, seed: int, confidence: float = 0.95) -> dict[str, Any]:
    """The metrics file's ``ci95``: ``{set: {CI_METRIC: {"low": .., "high": ..}}}`` for every set of ``pair_scores``.

    ``pair_scores`` is the frame of :func:`embedlab.evaluation.evaluate_model_with_scores` (columns
    ``PAIR_SCORE_COLUMNS``); each set's Spearman cosine is resampled on its own, sets in the frame's order.
    """
    out: dict[str, Any] = {}
    for name in dict.fromkeys(pair_scores["set"]):
        rows = pair_scores[pair_scores["set"] == name].sort_values("pair", kind="stable")
        low, high = bootstrap_ci(
            rows["gold"].to_numpy(),
            rows["cosine"].to_numpy(),
            resamples=resamples,
            seed=seed,
            confidence=confidence,
        )
        out[str(name)] = {CI_METRIC: {"low": low, "high": high}}
    return out
