"""10.4: a sentence embedder trained from an encoder that is not one yet, with one of three losses on NLI pairs.

The encoder (``encoder``) is the book's: a plain BERT-style checkpoint's transformer + mean pooling; or, on a CPU,
a static embedding table drawn at random over that checkpoint's tokenizer (no pretrained weight at all).

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

from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ParamsError
from embedlab.nli import ENTAILMENT, NLI_COLUMNS, check_columns, mnrl_triplets

LOSSES = ("softmax", "cosine", "mnrl")
Encoder = Literal["transformer", "static"]


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
    encoder: Encoder = "transformer",
    embedding_dim: int = 256,
    **where: Any,
) -> dict[str, Any]:
    """Train a new encoder with ``loss_name`` and save it: ``base_model``'s transformer + mean pooling
    (``encoder="transformer"``), or a random ``embedding_dim``-wide static table over its tokenizer (``"static"``).

    MNRL uses in-batch negatives, so its batches never repeat a text (``NO_DUPLICATES``): a repeated premise
    would otherwise be its own false negative. ``where`` (``checkpoint_dir``, ``live_dir``, ``evaluator``) goes to
    :func:`embedlab.training.train_checked`. Returns its stats plus data counts.
    """
    from embedlab.encoders import new_encoder, new_static_encoder
    from embedlab.training import train_checked

    if loss_name not in LOSSES:
        raise ParamsError(f"unknown loss {loss_name!r}", f"use one of {', '.join(LOSSES)}")
    dataset, counts = training_dataset(loss_name, nli, settings.seed)
    if encoder == "static":  # max_seq_length does not apply: a static table reads every token
        model = new_static_encoder(base_model, embedding_dim, settings.seed)
        settings = settings.model_copy(update={"max_seq_length": None})
    else:  # both builders seed themselves
        model = new_encoder(base_model, "mean", settings.max_seq_length, settings.seed)
    loss = build_loss(loss_name, model, settings.seed)
    sampler = "no_duplicates" if loss_name == "mnrl" else "batch_sampler"
    stats = train_checked(
        model, dataset, loss, settings, output_dir, batch_sampler=sampler, what=f"the {loss_name} model", **where
    )
    return {**stats, "data": counts, "loss": loss_name, "base_model": base_model, "encoder": encoder}
