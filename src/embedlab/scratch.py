"""10.4: a sentence embedder trained from a plain BERT-style encoder with one of three losses on NLI pairs.

The three losses read the same NLI pool in three shapes (columns in the order the loss reads them):

* ``softmax``: (sentence1 = premise, sentence2 = hypothesis, label 0/1/2): SBERT's classifier over
  (u, v, |u-v|), 3 labels;
* ``cosine``: (sentence1, sentence2, score): entailment = 1.0, neutral and contradiction = 0.0, as the book does;
* ``mnrl``: (anchor, positive, negative): entailment pairs as positives, a contradiction of the same premise as
  the hard negative. Where the pool holds no contradiction for that premise (a prefix of the shuffled offline
  pool cuts many groups apart) the negative is a seeded random hypothesis of another premise: the book's own
  "soft negative". :func:`mnrl_triplets` says how many of each it built.

Everything random (the classifier head of SoftmaxLoss, the batch sampler, the soft negatives) is seeded,
so the same seed gives byte-identical ``model.safetensors``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from embedlab.data import CONTRADICTION, ENTAILMENT, check_columns
from embedlab.errors import ParamsError

LOSSES = ("softmax", "cosine", "mnrl")
NLI_COLUMNS = ["premise", "hypothesis", "label"]


def softmax_dataset(nli):
    """(sentence1, sentence2, label) with GLUE's ids: SoftmaxLoss reads the two texts and the class.

    Renamed from premise/hypothesis only because sentence-transformers expects a column named "hypothesis" to be
    an anchor (SNLI triplet naming) and warns; the loss reads columns by position either way.
    """
    check_columns(nli, NLI_COLUMNS, "NLI pool")
    return nli.select_columns(NLI_COLUMNS).rename_columns({"premise": "sentence1", "hypothesis": "sentence2"})


def cosine_dataset(nli):
    """(sentence1, sentence2, score): the book maps entailment to 1.0 and neutral/contradiction to 0.0."""
    from datasets import Dataset

    check_columns(nli, NLI_COLUMNS, "NLI pool")
    return Dataset.from_dict(
        {
            "sentence1": nli["premise"],
            "sentence2": nli["hypothesis"],
            "score": [1.0 if label == ENTAILMENT else 0.0 for label in nli["label"]],
        }
    )


def mnrl_triplets(nli, seed: int = 42) -> tuple[Any, dict[str, int]]:
    """(anchor, positive, negative) from the entailment pairs; negative = a contradiction of the same premise.

    A premise with several entailments cycles through its contradictions; one without any gets a seeded random
    hypothesis of another premise (soft negative). Returns the dataset and counts of hard/soft negatives.
    """
    from datasets import Dataset

    check_columns(nli, NLI_COLUMNS, "NLI pool")
    groups: dict[str, dict[int, list[str]]] = {}
    for premise, hypothesis, label in zip(nli["premise"], nli["hypothesis"], nli["label"], strict=True):
        groups.setdefault(premise, {}).setdefault(label, []).append(hypothesis)
    hypotheses = list(nli["hypothesis"])
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    seen: set[tuple[str, str, str]] = set()
    hard = soft = 0
    for premise, by_label in groups.items():
        contradictions = by_label.get(CONTRADICTION, [])
        own = {h for hs in by_label.values() for h in hs}
        for i, positive in enumerate(by_label.get(ENTAILMENT, [])):
            if contradictions:
                negative = contradictions[i % len(contradictions)]
            else:
                negative = rng.choice(hypotheses)
                while negative in own and len(own) < len(hypotheses):
                    negative = rng.choice(hypotheses)
            key = (premise, positive, negative)
            if key in seen or positive == premise:
                continue
            seen.add(key)
            rows["anchor"].append(premise)
            rows["positive"].append(positive)
            rows["negative"].append(negative)
            hard += bool(contradictions)
            soft += not contradictions
    return Dataset.from_dict(rows), {"triplets": hard + soft, "hard_negatives": hard, "soft_negatives": soft}


def new_encoder(base_model: str, max_seq_length: int | None = None, seed: int = 42):
    """A BERT-style encoder + a new mean pooling: only the transformer weights come from ``base_model``.

    Seeded with ``seed`` first: any weight the base lacks (e.g. a pooler) is initialised the same every run.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from embedlab.models import loading, resolve_model
    from embedlab.training import seed_everything

    path = resolve_model(base_model)
    kwargs = {"max_seq_length": max_seq_length} if max_seq_length else {}
    seed_everything(seed)
    with loading(path):
        transformer = Transformer(path, **kwargs)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling])


def build_loss(name: str, model, seed: int = 42):
    """The book's loss ``name`` for ``model``; SoftmaxLoss's fresh classifier is drawn right after seeding ``seed``."""
    from sentence_transformers.sentence_transformer import losses

    from embedlab.training import seed_everything

    if name == "softmax":
        seed_everything(seed)
        return losses.SoftmaxLoss(model, embedding_dimension=model.get_embedding_dimension(), num_labels=3)
    if name == "cosine":
        return losses.CosineSimilarityLoss(model)
    if name == "mnrl":  # under DDP, in-batch negatives come from every process
        from embedlab.launch import world_size

        return losses.MultipleNegativesRankingLoss(model, gather_across_devices=world_size() > 1)
    raise ParamsError(f"unknown loss {name!r}", f"use one of {', '.join(LOSSES)}")


def training_dataset(name: str, nli, seed: int = 42) -> tuple[Any, dict[str, int]]:
    """The NLI pool in the shape loss ``name`` reads, and counts for the stage's log."""
    if name == "softmax":
        ds = softmax_dataset(nli)
        return ds, {"pairs": len(ds)}
    if name == "cosine":
        ds = cosine_dataset(nli)
        return ds, {"pairs": len(ds), "positives": int(sum(ds["score"]))}
    if name == "mnrl":
        return mnrl_triplets(nli, seed)
    raise ParamsError(f"unknown loss {name!r}", f"use one of {', '.join(LOSSES)}")


def run_scratch(
    base_model: str,
    nli,
    loss_name: str,
    settings,
    output_dir: str | Path,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    evaluator=None,
) -> dict[str, Any]:
    """Train a new encoder (``base_model``'s transformer + mean pooling) with ``loss_name`` and save it.

    MNRL uses in-batch negatives, so its batches never repeat a text (``NO_DUPLICATES``): a repeated premise
    would otherwise be its own false negative. Returns :func:`embedlab.training.train`'s stats plus data counts.
    """
    if loss_name not in LOSSES:
        raise ParamsError(f"unknown loss {loss_name!r}", f"use one of {', '.join(LOSSES)}")
    dataset, counts = training_dataset(loss_name, nli, settings.seed)
    model = new_encoder(base_model, settings.max_seq_length, settings.seed)  # both builders seed themselves
    loss = build_loss(loss_name, model, settings.seed)
    stats = train_checked(
        model,
        dataset,
        loss,
        settings,
        output_dir,
        checkpoint_dir=checkpoint_dir,
        live_dir=live_dir,
        evaluator=evaluator,
        batch_sampler="no_duplicates" if loss_name == "mnrl" else "batch_sampler",
        what=f"the {loss_name} model",
    )
    return {**stats, "data": counts, "loss": loss_name, "base_model": base_model}


def sts_score(final_eval: dict[str, float]) -> float | None:
    """The Spearman cosine among an STS evaluator's scores (None when the evaluator is not one)."""
    keys = [k for k in final_eval if k.endswith("spearman_cosine")]
    return final_eval[keys[0]] if len(keys) == 1 else None


def train_checked(
    model,
    dataset,
    loss,
    settings,
    output_dir: str | Path,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None,
    evaluator,
    batch_sampler: str,
    what: str,
) -> dict[str, Any]:
    """:func:`embedlab.training.train`, then refuse a collapsed model (STS evaluator given) before publishing it."""
    from embedlab.training import publish, train

    stats = train(
        model,
        dataset,
        loss,
        settings,
        None,
        checkpoint_dir=checkpoint_dir,
        live_dir=live_dir,
        evaluator=evaluator,
        batch_sampler=batch_sampler,
    )
    score = sts_score(stats["final_eval"])
    if score is not None and hasattr(evaluator, "sentences1"):
        refuse_collapsed(score, len(evaluator.sentences1), what)
    publish(model, output_dir, checkpoint_dir=checkpoint_dir, live_dir=live_dir)
    return stats


def first_rows(nli, max_rows: int | None):
    """The first ``max_rows`` rows of the pool (all when None): small profiles train on a prefix."""
    return nli if max_rows is None or max_rows >= len(nli) else nli.select(range(max_rows))


def chance_floor(n_pairs: int) -> float:
    """Spearman a random ranking of ``n_pairs`` pairs exceeds with probability 0.0005 (z = 3.29)."""
    return 3.29 / max(n_pairs - 1, 1) ** 0.5


def refuse_collapsed(score: float, n_pairs: int, what: str) -> None:
    """Fail when a trained model ranks STS pairs no better than chance (a collapsed or diverged model).

    Lexical overlap is no usable floor here: it scores 0.65 on STS-B validation, above the book's own
    SoftmaxLoss model; a random ranking is the trivial baseline every sane embedder must clearly beat.
    """
    import math

    from embedlab.errors import EmbedlabError

    floor = chance_floor(n_pairs)
    if not math.isfinite(score) or score <= floor:
        raise EmbedlabError(
            f"{what} scores spearman_cosine {score:.4f} on STS-B validation ({n_pairs} pairs), no better than a "
            f"random ranking (chance floor {floor:.3f}); it is not saved for the stages after it",
            "lower the learning rate, train more steps, or check the training data",
        )
