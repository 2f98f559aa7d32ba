"""The trivial baselines a trained model must beat before a stage saves it for the stages after it.

* a random ranking (:func:`chance_floor`): every supervised model (10.4, 10.5.1); lexical overlap is no usable
  floor here, it scores 0.65 on STS-B validation, above the book's own SoftmaxLoss model;
* the base's input word embeddings averaged (:func:`static_floor`): models trained from a plain encoder without
  labels (TSDAE, SimCSE, CT) and both arms of domain adaptation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedlab.errors import EmbedlabError


def chance_floor(n_pairs: int) -> float:
    """Spearman a random ranking of ``n_pairs`` pairs exceeds with probability 0.0005 (z = 3.29)."""
    return 3.29 / max(n_pairs - 1, 1) ** 0.5


def refuse_collapsed(score: float, n_pairs: int, what: str) -> None:
    """Fail when a trained model ranks STS pairs no better than chance (a collapsed or diverged model)."""
    floor = chance_floor(n_pairs)
    if not math.isfinite(score) or score <= floor:
        raise EmbedlabError(
            f"{what} scores spearman_cosine {score:.4f} on STS-B validation ({n_pairs} pairs), no better than a "
            f"random ranking (chance floor {floor:.3f}); it is not saved for the stages after it",
            "lower the learning rate, train more steps, or check the training data",
        )


def static_floor(base_model: str, sts_validation) -> float:
    """STS-B validation Spearman (cosine) of the base's *input* token embeddings averaged (no transformer layers).

    A trained encoder below this bag-of-embeddings baseline has collapsed or diverged.
    """
    import numpy as np
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer

    from embedlab.models import resolve_model

    path = resolve_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    weights = AutoModel.from_pretrained(path).get_input_embeddings().weight.detach().float().numpy()
    special = set(tokenizer.all_special_ids)

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), weights.shape[1]), dtype=np.float32)
        for i, ids in enumerate(tokenizer(list(texts), add_special_tokens=False)["input_ids"]):
            ids = [t for t in ids if t not in special]
            if ids:
                out[i] = weights[ids].mean(axis=0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    a, b = embed(sts_validation["sentence1"]), embed(sts_validation["sentence2"])
    return float(spearmanr((a * b).sum(axis=1), sts_validation["score"]).statistic)


def check_beats_floor(name: str, score: float, floor: float) -> None:
    """Refuse a model whose STS-B validation Spearman is not above :func:`static_floor`."""
    if not score > floor:
        raise EmbedlabError(
            f"{name}: STS-B validation spearman_cosine {score:.4f} does not beat the bag-of-input-embeddings "
            f"baseline {floor:.4f}; the model has collapsed or diverged and is not saved",
            "lower the learning rate or the number of epochs, or check the training sentences",
        )


def summary(stats: dict[str, Any], score: float, floor: float) -> dict[str, Any]:
    """A stage's run statistics for metrics/: the headline score and its floor instead of all ten eval keys."""
    out = {k: v for k, v in stats.items() if k != "final_eval"}
    return {**out, **headline(stats, score, floor)}


def headline(stats: dict[str, Any], score: float, floor: float) -> dict[str, float]:
    """The score and its floor under the evaluator's own name (``stsb_validation_500of1500_spearman_cosine`` for
    a subset, :func:`embedlab.evaluation.curve_name`), so the metrics file says which pairs they were computed on."""
    (key,) = (k for k in stats["final_eval"] if k.endswith("spearman_cosine"))
    return {key: score, floor_key(key): floor}


def floor_key(score_key: str) -> str:
    """``<set>_floor`` beside ``<set>_spearman_cosine`` (:func:`headline`)."""
    return score_key.removesuffix("spearman_cosine") + "floor"


def record_then_check(
    name: str,
    stats: dict[str, Any],
    floor: float,
    metrics_path: str | Path,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> float:
    """Write the run's :func:`summary` to ``metrics_path`` (it explains a refusal too), then run the method's own
    ``check`` and refuse a model not above the bag-of-embeddings ``floor``; returns the STS-B validation score."""
    from embedlab.io import write_json
    from embedlab.training import sts_score

    score = sts_score(stats["final_eval"])
    if score is None:
        raise EmbedlabError(f"no single spearman_cosine in the final evaluation: {stats['final_eval']}")
    write_json(Path(metrics_path), summary(stats, score, floor))
    if check is not None:
        check(stats)
    check_beats_floor(name, score, floor)
    return score
