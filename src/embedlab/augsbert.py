"""Augmented SBERT (the chapter's 10.5.2): cross-encoder on gold, silver labels, bi-encoder on gold + silver.

The book's recipe, step by step (candidate pairs live in :mod:`embedlab.silver`):

1. a cross-encoder (``num_labels=2``: entailment -> 1, neutral/contradiction -> 0) is trained on the gold pairs;
   here a held-out slice of gold measures it, and a model that does not beat "always the majority class" is
   refused, because its silver labels would teach the bi-encoder noise (measured: 0.30 Spearman);
2. it labels the candidate pairs: the book's hard labels (softmax -> argmax) or soft ones (P(positive));
3. a bi-encoder is trained with ``CosineSimilarityLoss`` on gold + silver, de-duplicated on
   (sentence1, sentence2) keeping gold, exactly like the book's ``drop_duplicates(keep="first")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from embedlab.errors import EmbedlabError

# The book's mapping {2: 0, 1: 0, 0: 1} over GLUE ids (0 entailment, 1 neutral, 2 contradiction).
BOOK_LABEL_MAP = {0: 1, 1: 0, 2: 0}
PAIR_COLUMNS = ["sentence1", "sentence2", "label"]


class CrossEncoderRejected(EmbedlabError):
    """The cross-encoder does not beat the majority-class baseline on held-out gold."""


def binary_pairs(nli):
    """NLI rows (``premise``, ``hypothesis``, ``label`` 0/1/2) as the book's binary pairs (``label`` 1 = entailment)."""
    from datasets import Dataset

    unknown = sorted(set(nli["label"]) - set(BOOK_LABEL_MAP))
    if unknown:
        raise EmbedlabError(f"NLI labels {unknown} are not GLUE ids 0/1/2", "re-run `dvc repro prepare`")
    return Dataset.from_dict(
        {
            "sentence1": list(nli["premise"]),
            "sentence2": list(nli["hypothesis"]),
            "label": [BOOK_LABEL_MAP[v] for v in nli["label"]],
        }
    )


def split_holdout(pairs, fraction: float, seed: int):
    """(train, holdout): a seeded random ``fraction`` of the rows held out, both in their original order."""
    import random

    if not 0 < fraction < 1:
        raise EmbedlabError(f"holdout fraction {fraction} is not in (0, 1)", "set cross_encoder.holdout to e.g. 0.1")
    n = len(pairs)
    n_holdout = round(n * fraction)
    if n_holdout < 1 or n_holdout >= n:
        raise EmbedlabError(
            f"holdout {fraction} of {n} gold pairs leaves {n_holdout} to evaluate and {n - n_holdout} to train",
            "use more gold pairs (prepare.gold_size) or another cross_encoder.holdout",
        )
    held = set(random.Random(seed).sample(range(n), n_holdout))
    train_idx = [i for i in range(n) if i not in held]
    return pairs.select(train_idx), pairs.select(sorted(held))


# --------------------------------------------------------------------------------------------------------------
# Step 1: the cross-encoder


def build_cross_encoder(base: str, max_seq_length: int | None = None, seed: int = 42):
    """A 2-class ``CrossEncoder`` on ``base``; its fresh classification head is drawn right after seeding ``seed``."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from embedlab.models import resolve_model
    from embedlab.training import seed_everything

    path = resolve_model(base)
    seed_everything(seed)  # the head is random: unseeded, every run trained a different model
    model = CrossEncoder(path, num_labels=2, trust_remote_code=False)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def train_cross_encoder(model, train_pairs, settings, *, checkpoint_dir, live_dir=None) -> dict[str, Any]:
    """Train with ``CrossEntropyLoss`` over the 2 classes (what the book's ``fit`` does for ``num_labels=2``).

    Saves nothing: the caller checks the model (:func:`check_cross_encoder`) before saving it.
    """
    from sentence_transformers.cross_encoder.losses import CrossEntropyLoss

    from embedlab.training import train

    dataset = train_pairs.select_columns(PAIR_COLUMNS)
    return train(
        model,
        dataset,
        CrossEntropyLoss(model),
        settings,
        None,
        checkpoint_dir=checkpoint_dir,
        live_dir=live_dir,
        cross_encoder=True,
    )


def positive_probabilities(
    model,
    sentences1,
    sentences2,
    batch_size: int = 64,
    show_progress: bool = False,
    backend: str = "torch",
):
    """P(label 1) per pair: softmax over the 2 logits, without gradients (numpy float32 array).

    ``backend="torch"`` is the book's ``model.predict(pairs, apply_softmax=True)``; ``onnx``, ``onnx-int8``,
    ``openvino`` and ``openvino-int8`` export the same model to a temporary folder first and run it there
    (:mod:`embedlab.export`; ``benchmarks/README.md`` has the speed-ups and the agreement with torch).
    """
    import numpy as np

    pairs = list(zip(sentences1, sentences2, strict=True))
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    if backend == "torch":
        import torch

        with torch.inference_mode():
            probs = model.predict(
                pairs, batch_size=batch_size, apply_softmax=True, show_progress_bar=show_progress, convert_to_numpy=True
            )
    else:
        probs = _fast_predict(model, pairs, batch_size, backend)
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != 2:
        raise EmbedlabError(
            f"the cross-encoder returns {probs.shape[1:] or 'one'} score(s) per pair, not 2 class probabilities",
            "train it with num_labels=2 (`dvc repro train_cross_encoder`)",
        )
    return probs[:, 1]


def _fast_predict(model, pairs, batch_size: int, backend: str):
    """Softmax scores from an exported variant; the export lives in a temporary folder, removed afterwards."""
    import tempfile

    from embedlab import export

    if backend not in export.VARIANTS:
        hint = f"use torch or one of {', '.join(export.VARIANTS)}"
        raise EmbedlabError(f"unknown labelling backend {backend!r}", hint)
    with tempfile.TemporaryDirectory(prefix="embedlab-silver-") as tmp:
        # openvino-int8 calibrates its activation ranges on the first pairs it is about to label (no labels used)
        path = export.export_variants(model, Path(tmp) / "export", [backend], calibration=pairs)[backend]
        return export.FastModel(model, path).predict(pairs, batch_size=batch_size, apply_softmax=True)


def hard_labels(p_positive):
    """The book's ``np.argmax(softmax, axis=1)``: 1 where P(positive) > P(negative); a tie goes to 0 as in argmax."""
    import numpy as np

    return (np.asarray(p_positive) > 0.5).astype(np.int64)


def classification_metrics(labels, p_positive) -> dict[str, float]:
    """Accuracy, F1 and average precision of the positive class, and the majority-class accuracy to beat."""
    import numpy as np
    from sklearn.metrics import average_precision_score, f1_score

    y = np.asarray(labels, dtype=np.int64)
    pred = hard_labels(p_positive)
    positive_rate = float(y.mean())
    return {
        "pairs": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "f1": float(f1_score(y, pred, zero_division=0.0)),
        "average_precision": float(average_precision_score(y, p_positive)) if 0 < y.sum() < len(y) else float("nan"),
        "majority_accuracy": max(positive_rate, 1 - positive_rate),
        "positive_rate": positive_rate,
        "predicted_positive_rate": float(pred.mean()),
    }


def check_cross_encoder(metrics: dict[str, float]) -> None:
    """Refuse a cross-encoder whose held-out accuracy does not beat always answering the majority class."""
    if not metrics["accuracy"] > metrics["majority_accuracy"]:
        raise CrossEncoderRejected(
            f"the cross-encoder's held-out accuracy {metrics['accuracy']:.3f} does not beat the majority class "
            f"({metrics['majority_accuracy']:.3f}) on {metrics['pairs']} gold pairs; its silver labels would be "
            "noise, so no model was written",
            "train longer or with another learning rate (cross_encoder.epochs, learning_rate, warmup as a ratio), "
            "or give it more gold pairs (prepare.gold_size)",
        )


# --------------------------------------------------------------------------------------------------------------
# Step 2: silver labels


def silver_labels(p_positive, mode: Literal["hard", "soft"]):
    """The labels the bi-encoder learns from: the book's hard 0/1, or the soft P(positive) in [0, 1]."""
    import numpy as np

    if mode == "hard":
        return hard_labels(p_positive).astype(np.float32)
    if mode == "soft":
        return np.clip(np.asarray(p_positive, dtype=np.float32), 0.0, 1.0)
    raise EmbedlabError(f"unknown silver label mode {mode!r}", "use hard or soft")


def score_histogram(p_positive, bins: int = 10) -> list[dict[str, Any]]:
    """Counts of P(positive) in ``bins`` equal bins over [0, 1] (rows for a dvc bar plot)."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(p_positive, dtype=np.float64), bins=bins, range=(0.0, 1.0))
    return [
        {"bin": f"{lo:.2f}-{hi:.2f}", "low": round(float(lo), 4), "pairs": int(c)}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def label_stats(p_positive, labels, mode: str) -> dict[str, Any]:
    """Label distribution of the silver set, for ``metrics/silver_stats.json``."""
    import numpy as np

    p = np.asarray(p_positive, dtype=np.float64)
    hard = hard_labels(p)
    return {
        "pairs": int(len(p)),
        "mode": mode,
        "positive": int(hard.sum()),
        "negative": int(len(hard) - hard.sum()),
        "positive_rate": float(hard.mean()) if len(p) else 0.0,
        "mean_score": float(p.mean()) if len(p) else 0.0,
        "mean_label": float(np.mean(labels)) if len(p) else 0.0,
        "confident_rate": float(((p < 0.1) | (p > 0.9)).mean()) if len(p) else 0.0,
    }


# --------------------------------------------------------------------------------------------------------------
# Step 3: the bi-encoder


def combine(gold_pairs, silver_pairs=None):
    """The book's ``pd.concat([gold, silver]).drop_duplicates(subset=["sentence1", "sentence2"], keep="first")``.

    Labels become float32 (CosineSimilarityLoss regresses the cosine onto them).
    """
    from datasets import Dataset

    parts = [gold_pairs] if silver_pairs is None else [gold_pairs, silver_pairs]
    seen: set[tuple[str, str]] = set()
    out: dict[str, list] = {"sentence1": [], "sentence2": [], "label": []}
    for part in parts:
        for a, b, y in zip(part["sentence1"], part["sentence2"], part["label"], strict=True):
            if (a, b) in seen:
                continue
            seen.add((a, b))
            out["sentence1"].append(a)
            out["sentence2"].append(b)
            out["label"].append(float(y))
    from datasets import Features, Value

    features = Features({"sentence1": Value("string"), "sentence2": Value("string"), "label": Value("float32")})
    return Dataset.from_dict(out, features=features)


def train_bi_encoder(model, pairs, settings, output_dir: str | Path, *, checkpoint_dir, live_dir=None, card=None):
    """CosineSimilarityLoss on (sentence1, sentence2, label), the book's loss for AugSBERT."""
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    from embedlab.training import train

    dataset = pairs.select_columns(PAIR_COLUMNS)
    return train(
        model,
        dataset,
        CosineSimilarityLoss(model),
        settings,
        output_dir,
        checkpoint_dir=checkpoint_dir,
        live_dir=live_dir,
        card=card,
    )
