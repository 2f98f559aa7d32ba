"""STS evaluation exactly as the chapter does it: ``EmbeddingSimilarityEvaluator`` with scores/5.

Every model gets the book's ten keys (pearson/spearman x cosine, manhattan, euclidean, dot, plus max) on STS-B
validation at the top level of its metrics file, and the same ten keys per extra set (STS-B test, SICK-R)
under the set's name, because validation alone invites over-tuning.

A single number on 1,500 pairs hides its noise, so the evaluation can also return each pair's cosine score
(computed once, from the embeddings the evaluator itself made): :mod:`embedlab.stats` resamples them into
confidence intervals and paired tests. This module does not import it: the training stages score their curves with
:func:`sts_evaluator` and depend on this file only, so a change to the statistics retrains nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIMILARITY_FNS = ["cosine", "manhattan", "euclidean", "dot"]
METRIC_KEYS = [f"{m}_{fn}" for fn in [*SIMILARITY_FNS, "max"] for m in ("pearson", "spearman")]
HEADLINE_SET = "stsb_validation"
PAIR_SCORE_COLUMNS = ["set", "pair", "gold", "cosine", "metric"]


def sts_evaluator(dataset, name: str, batch_size: int = 64, evaluator_cls=None):
    """The book's evaluator over a dataset with ``sentence1``, ``sentence2``, ``score`` (0-5)."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return (evaluator_cls or EmbeddingSimilarityEvaluator)(
        sentences1=dataset["sentence1"],
        sentences2=dataset["sentence2"],
        scores=[s / 5 for s in dataset["score"]],
        similarity_fn_names=SIMILARITY_FNS,
        batch_size=batch_size,
        name=name,
        write_csv=False,
    )


def curve_pairs(dataset, max_pairs: int | None):
    """The STS-B validation pairs a training stage scores every ``eval_steps`` (curves) and at the end (checks).

    Each score re-encodes the set with the model as it is at that step, so on a CPU a few hundred pairs keep
    the curves' shape for a third of the cost; the evaluate stage scores the finished model on every pair.
    STS-B is ordered by genre (captions first, then news, then forums), so the pairs are spread evenly over the
    whole set rather than taken from its head.
    """
    n = len(dataset)
    if max_pairs is None or max_pairs >= n:
        return dataset
    return dataset.select([i * n // max_pairs for i in range(max_pairs)])


def curve_name(n_pairs: int, total: int) -> str:
    """The name training-time scores go under (the evaluator's, so every key it logs starts with it).

    ``stsb_validation`` when they cover the whole set, ``stsb_validation_<n>of<total>`` when :func:`curve_pairs`
    took a subset: a score on 500 pairs differs from the evaluate stage's on 1,500 (0.8308 vs 0.8232 for one
    model), so no key claims the whole set for part of it.
    """
    return HEADLINE_SET if n_pairs >= total else f"{HEADLINE_SET}_{n_pairs}of{total}"


def read_curve_pairs(max_pairs: int | None, path: str | Path = "data/eval/stsb_validation.parquet"):
    """:func:`curve_pairs` of the prepared STS-B validation file, what every training stage scores, and their
    :func:`curve_name`: ``(name, dataset)``."""
    from embedlab.io import read_parquet

    full = read_parquet(path, ["sentence1", "sentence2", "score"])
    pairs = curve_pairs(full, max_pairs)
    return curve_name(len(pairs), len(full)), pairs


def evaluate_sts(model, dataset, name: str, batch_size: int = 64) -> dict[str, float]:
    """The ten book metrics of ``model`` on one STS dataset, keys without the evaluator's name prefix."""
    return evaluate_sts_with_scores(model, dataset, name, batch_size)[0]


def encode_unique(model, sentence_lists, batch_size: int = 64) -> dict[str, Any]:
    """Each distinct sentence of ``sentence_lists`` encoded once, as the evaluator would encode it.

    STS sets repeat sentences (STS-B validation + test + SICK-R: 15,570 sentences, 10,386 distinct), and the
    evaluator encodes both columns of each set separately; encoding the union once cuts evaluation time by a third
    with the same embeddings (same ``encode`` arguments; only batch neighbours differ, which padding masks out).
    """
    unique = list(dict.fromkeys(s for sentences in sentence_lists for s in sentences))
    embeddings = model.encode(unique, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=True)
    return dict(zip(unique, embeddings, strict=True))


def evaluate_sts_with_scores(model, dataset, name: str, batch_size: int = 64, cache: dict[str, Any] | None = None):
    """The ten book metrics and each pair's cosine similarity, from one encoding pass.

    The evaluator is the book's; a subclass only keeps the embeddings it computes, so the per-pair scores are
    exactly those behind ``spearman_cosine`` (checked) and bootstrapping never re-encodes. With ``cache`` (from
    :func:`encode_unique`) the evaluator takes its embeddings from there instead of encoding again.
    """
    import numpy as np
    import torch
    from scipy.stats import spearmanr
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.util import pairwise_cos_sim

    class KeepingEvaluator(EmbeddingSimilarityEvaluator):
        def embed_inputs(self, model, sentences, **kwargs):
            if cache is not None and not kwargs and self.precision is None and self.truncate_dim is None:
                embeddings = np.stack([cache[s] for s in sentences])
            else:
                embeddings = super().embed_inputs(model, sentences, **kwargs)
            self.kept.append(embeddings)
            return embeddings

    evaluator = sts_evaluator(dataset, name, batch_size, evaluator_cls=KeepingEvaluator)
    evaluator.kept = []
    raw = evaluator(model)
    if len(evaluator.kept) != 2:  # the evaluator encodes sentences1 then sentences2 (float precision)
        raise RuntimeError(f"expected 2 encoding passes in EmbeddingSimilarityEvaluator, saw {len(evaluator.kept)}")
    cosine = pairwise_cos_sim(torch.as_tensor(evaluator.kept[0]), torch.as_tensor(evaluator.kept[1]))
    cosine = cosine.detach().cpu().numpy().astype(np.float64)
    prefix = f"{name}_"
    out = {k.removeprefix(prefix): float(v) for k, v in raw.items()}
    missing = [k for k in METRIC_KEYS if k not in out]
    if missing:  # a sentence-transformers change we have not seen: fail loudly rather than write partial files
        raise RuntimeError(f"EmbeddingSimilarityEvaluator returned no {missing}; got {sorted(out)}")
    gold = np.asarray(evaluator.scores, dtype=np.float64)
    check = float(spearmanr(gold, cosine)[0])
    if not np.isclose(check, out["spearman_cosine"], atol=1e-6, equal_nan=True):
        raise RuntimeError(f"kept cosine scores give Spearman {check}, the evaluator {out['spearman_cosine']}")
    return {k: out[k] for k in METRIC_KEYS}, cosine


def evaluate_model(model, eval_sets: dict[str, Any], batch_size: int = 64) -> dict[str, Any]:
    """Metrics for every set: the headline set's keys at top level, the others nested under their name.

    Confidence intervals (the metrics file's ``ci95``) come from the pair scores of
    :func:`evaluate_model_with_scores`, by :func:`embedlab.stats.intervals`.
    """
    return evaluate_model_with_scores(model, eval_sets, batch_size)[0]


def evaluate_model_with_scores(model, eval_sets: dict[str, Any], batch_size: int = 64):
    """:func:`evaluate_model` plus a ``pandas.DataFrame`` of every pair's cosine score (``PAIR_SCORE_COLUMNS``)."""
    import numpy as np
    import pandas as pd

    if HEADLINE_SET not in eval_sets:
        raise ValueError(f"{HEADLINE_SET} must be among the evaluation sets")
    result: dict[str, Any] = {}
    frames = []
    cache = encode_unique(
        model, [dataset[c] for dataset in eval_sets.values() for c in ("sentence1", "sentence2")], batch_size
    )
    for name, dataset in eval_sets.items():
        scores, cosine = evaluate_sts_with_scores(model, dataset, name, batch_size, cache)
        gold = np.asarray(dataset["score"], dtype=np.float64) / 5
        if name == HEADLINE_SET:
            result.update(scores)
        else:
            result[name] = scores
        frames.append(
            pd.DataFrame(
                {"set": name, "pair": np.arange(len(gold)), "gold": gold, "cosine": cosine, "metric": "spearman"}
            )
        )
    return result, pd.concat(frames, ignore_index=True)[PAIR_SCORE_COLUMNS]
