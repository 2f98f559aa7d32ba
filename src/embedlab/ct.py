"""Contrastive Tension (CT), in-batch negatives variant: two copies of the encoder must agree on a sentence.

``ContrastiveTensionLossInBatchNegatives`` reads one text column: copy 1 (a deep copy, trained too, then thrown
away) and copy 2 (the model we keep) embed the same batch; each sentence's two embeddings are the positive
pair, the other sentences of the batch the negatives (symmetric cross-entropy over scaled cosine
similarities). The library recommends it over the original ``ContrastiveTensionLoss``, which reads
(text_A, text_B) pairs built by hand, about 1 identical pair for 7 different ones, and scores them with binary
cross-entropy: a weaker signal per batch. Same sentences and same encoder + pooling as TSDAE and SimCSE.
"""

from __future__ import annotations

from typing import Any


def ct_dataset(sentences: list[str]):
    """``Dataset`` with one column ``text`` of distinct sentences (duplicates in a batch would be false negatives)."""
    from datasets import Dataset

    from embedlab.text import training_sentences

    return Dataset.from_dict({"text": training_sentences(sentences, "CT")})


def run_ct(
    base_model: str,
    sentences: list[str],
    settings,
    *,
    pooling: str = "cls",
    scale: float = 20.0,
    **where: Any,
) -> tuple[Any, dict[str, Any]]:
    """Train CT from ``base_model`` on ``sentences``; return the (unsaved) kept copy and run statistics.

    ``where`` (``checkpoint_dir``, ``live_dir``, ``evaluator``) goes to :func:`embedlab.training.train`.
    """
    from sentence_transformers.sentence_transformer.losses import ContrastiveTensionLossInBatchNegatives

    from embedlab.encoders import new_encoder
    from embedlab.training import train

    # Checkpoints hold the kept copy only, not copy 1 (a loss parameter): resuming would restart copy 1 from the
    # base model with stale optimizer state, so an interrupted run starts over.
    settings = settings.model_copy(update={"resume": False})
    dataset = ct_dataset(sentences)
    model = new_encoder(base_model, pooling, settings.max_seq_length, settings.seed)  # seeded inside
    loss = ContrastiveTensionLossInBatchNegatives(model, scale=scale)
    stats = train(model, dataset, loss, settings, None, **where)
    stats.update(sentences=len(dataset), pooling=pooling, final_scale=round(float(loss.logit_scale.detach().exp()), 4))
    return model, stats
