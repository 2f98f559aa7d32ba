"""SimCSE (unsupervised): each sentence is its own positive; dropout makes the two views differ.

The same sentence twice as (anchor, positive) through ``MultipleNegativesRankingLoss``: the other sentences of
the batch are the negatives. MNRL's default scale of 20 is SimCSE's temperature 0.05. Trained on the same
sentences as TSDAE and CT (``tsdae.py``, ``ct.py``), from the same encoder with the same fresh pooling, so the
three unsupervised objectives are the only difference in the comparison table.
"""

from __future__ import annotations

from typing import Any


def simcse_pairs(sentences: list[str]):
    """``Dataset`` (anchor, positive) with the same text in both columns."""
    from datasets import Dataset

    from embedlab.text import training_sentences

    sentences = training_sentences(sentences, "SimCSE")
    return Dataset.from_dict({"anchor": sentences, "positive": list(sentences)})


def dropout_is_active(model) -> bool:
    """SimCSE needs dropout > 0 in the transformer: without it both views are identical and the loss is trivial."""
    config = model.transformers_model.config
    return float(getattr(config, "hidden_dropout_prob", 0.0) or 0.0) > 0.0


def run_simcse(
    base_model: str,
    sentences: list[str],
    settings,
    *,
    pooling: str = "cls",
    **where: Any,
) -> tuple[Any, dict[str, Any]]:
    """Train SimCSE from ``base_model`` on ``sentences``; return the (unsaved) model and run statistics.

    ``where`` (``checkpoint_dir``, ``live_dir``, ``evaluator``) goes to :func:`embedlab.training.train`.
    """
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from embedlab.encoders import new_encoder
    from embedlab.errors import EmbedlabError
    from embedlab.training import train

    dataset = simcse_pairs(sentences)
    model = new_encoder(base_model, pooling, settings.max_seq_length, settings.seed)  # seeded inside
    if not dropout_is_active(model):
        raise EmbedlabError(
            f"{base_model} has no dropout: SimCSE's two views would be identical", "use a BERT-like base"
        )
    from embedlab.launch import world_size

    loss = MultipleNegativesRankingLoss(model, gather_across_devices=world_size() > 1)  # DDP: all negatives
    stats = train(model, dataset, loss, settings, None, **where)
    stats.update(sentences=len(dataset), pooling=pooling)
    return model, stats
