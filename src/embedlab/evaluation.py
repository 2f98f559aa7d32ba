"""STS evaluation exactly as the chapter does it: ``EmbeddingSimilarityEvaluator`` with scores/5.

Every model gets the book's ten keys (pearson/spearman x cosine, manhattan, euclidean, dot, plus max) on STS-B
validation at the top level of its metrics file, and the same ten keys per extra set (STS-B test, SICK-R)
under the set's name, because validation alone invites over-tuning.
"""

from __future__ import annotations

from typing import Any

SIMILARITY_FNS = ["cosine", "manhattan", "euclidean", "dot"]
METRIC_KEYS = [f"{m}_{fn}" for fn in [*SIMILARITY_FNS, "max"] for m in ("pearson", "spearman")]
HEADLINE_SET = "stsb_validation"


def sts_evaluator(dataset, name: str, batch_size: int = 64):
    """The book's evaluator over a dataset with ``sentence1``, ``sentence2``, ``score`` (0-5)."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(
        sentences1=dataset["sentence1"],
        sentences2=dataset["sentence2"],
        scores=[s / 5 for s in dataset["score"]],
        similarity_fn_names=SIMILARITY_FNS,
        batch_size=batch_size,
        name=name,
        write_csv=False,
    )


def evaluate_sts(model, dataset, name: str, batch_size: int = 64) -> dict[str, float]:
    """The ten book metrics of ``model`` on one STS dataset, keys without the evaluator's name prefix."""
    raw = sts_evaluator(dataset, name, batch_size)(model)
    prefix = f"{name}_"
    out = {k.removeprefix(prefix): float(v) for k, v in raw.items()}
    missing = [k for k in METRIC_KEYS if k not in out]
    if missing:  # a sentence-transformers change we have not seen: fail loudly rather than write partial files
        raise RuntimeError(f"EmbeddingSimilarityEvaluator returned no {missing}; got {sorted(out)}")
    return {k: out[k] for k in METRIC_KEYS}


def evaluate_model(model, eval_sets: dict[str, Any], batch_size: int = 64) -> dict[str, Any]:
    """Metrics for every set: the headline set's keys at top level, the others nested under their name."""
    if HEADLINE_SET not in eval_sets:
        raise ValueError(f"{HEADLINE_SET} must be among the evaluation sets")
    result: dict[str, Any] = {}
    for name, dataset in eval_sets.items():
        scores = evaluate_sts(model, dataset, name, batch_size)
        if name == HEADLINE_SET:
            result.update(scores)
        else:
            result[name] = scores
    return result
