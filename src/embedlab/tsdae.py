"""10.6.1 TSDAE: learn sentence embeddings without labels by reconstructing sentences from damaged copies.

The encoder sees a sentence with 60 % of its words *deleted* and pools it into one vector (CLS pooling); a
decoder initialised from the same checkpoint, with its weights tied to the encoder's, must rebuild the original
sentence from that vector alone through cross-attention (``DenoisingAutoEncoderLoss``). Only the encoder is kept.

Why the noise is implemented here: ``sentence_transformers.datasets.DenoisingAutoEncoderDataset`` is deprecated,
several public scripts *keep* 60 % of the words instead of deleting them, and nltk's ``word_tokenize`` needs the
``punkt`` data, which cannot be downloaded offline. :func:`delete_words` splits words with
:func:`embedlab.text.split_words` and joins them with nltk's ``TreebankWordDetokenizer`` (pure code), seeded.
"""

from __future__ import annotations

import random
from typing import Any

from embedlab.encoders import Pooling
from embedlab.errors import DataError, EmbedlabError
from embedlab.text import clean_sentences, join_words, split_words, training_sentences

DEL_RATIO = 0.6


def delete_words(text: str, rng: random.Random, del_ratio: float = DEL_RATIO) -> str:
    """TSDAE's noise: drop each word independently with probability ``del_ratio``; keep at least one word.

    As in the TSDAE paper's code (``keep = rand(n) > del_ratio``): ``del_ratio=0.6`` deletes 60 % of the words.
    """
    if not 0.0 <= del_ratio < 1.0:
        raise ValueError(f"del_ratio must be in [0, 1), got {del_ratio}")
    words = split_words(text)
    if not words:
        raise DataError(f"cannot damage a sentence without words: {text!r}", "drop empty sentences first")
    kept = [w for w in words if rng.random() >= del_ratio]
    if not kept:  # an empty input teaches the decoder nothing and breaks some tokenizers
        kept = [words[rng.randrange(len(words))]]
    return join_words(kept)


def noisy_pairs(sentences: list[str], del_ratio: float = DEL_RATIO, seed: int = 42):
    """``Dataset`` with columns in the order the loss reads them: (damaged, original)."""
    from datasets import Dataset

    rng = random.Random(seed)
    sentences = training_sentences(sentences, "TSDAE")
    damaged = [delete_words(s, rng, del_ratio) for s in sentences]
    return Dataset.from_dict({"damaged": damaged, "original": sentences})


def split_heldout(sentences: list[str], n: int, seed: int = 42) -> tuple[list[str], list[str]]:
    """(train, held-out): ``n`` sentences picked at random (seeded) to measure reconstruction before/after."""
    n = min(n, len(sentences) // 10)
    picked = set(random.Random(seed).sample(range(len(sentences)), n)) if n > 0 else set()
    train = [s for i, s in enumerate(sentences) if i not in picked]
    return train, [s for i, s in enumerate(sentences) if i in picked]


def tsdae_loss(model, seed: int = 42):
    """``DenoisingAutoEncoderLoss`` with ``tie_encoder_decoder=True``, checked to really share the weights.

    With tying, the library loads the decoder from the encoder's own checkpoint (``config._name_or_path``, set
    by :func:`embedlab.encoders.new_encoder`) and ignores ``decoder_name_or_path`` (passing it only logs a warning). The
    decoder's cross-attention and LM-head transform are new (transformers says "newly initialized": expected),
    drawn right after seeding ``seed``.
    """
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    from embedlab.training import seed_everything

    seed_everything(seed)
    loss = DenoisingAutoEncoderLoss(model, decoder_name_or_path=None, tie_encoder_decoder=True)
    shared = tied_parameters(loss)
    if shared["word_embeddings"] is False or shared["shared"] == 0:
        raise EmbedlabError(
            "TSDAE's decoder does not share the encoder's weights",
            "use a BERT-like base whose checkpoint loads as a decoder (AutoModelForCausalLM)",
        )
    return loss


def tied_parameters(loss) -> dict[str, Any]:
    """How the decoder shares weights with the encoder: same tensors, not copies."""
    encoder = loss.encoder.transformers_model
    decoder = loss.decoder
    base = decoder.base_model
    enc = {id(p) for p in encoder.parameters()}
    dec = [p for p in base.parameters()]
    word = encoder.get_input_embeddings().weight
    out = decoder.get_output_embeddings()
    return {
        "shared": sum(id(p) in enc for p in dec),
        "decoder_base_params": len(dec),
        "word_embeddings": base.get_input_embeddings().weight is word,
        "lm_head_tied": out is not None and out.weight.data_ptr() == word.data_ptr(),
    }


def reconstruction_loss(loss, pairs, batch_size: int = 32) -> float:
    """Mean TSDAE loss (token cross-entropy of the decoder) over ``pairs`` (damaged, original), no dropout."""
    import torch

    model = loss.encoder
    was_training = loss.training
    loss.eval()
    total, weight = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                batch = pairs[start : start + batch_size]
                features = []
                for texts in (batch["damaged"], batch["original"]):
                    f = model.preprocess(texts)
                    features.append({k: v.to(model.device) if hasattr(v, "to") else v for k, v in f.items()})
                value = loss(features, None)
                total += float(value) * len(batch["original"])
                weight += len(batch["original"])
    finally:
        loss.train(was_training)
    return total / max(weight, 1)


def run_tsdae(
    base_model: str,
    sentences: list[str],
    settings,
    *,
    pooling: Pooling = "cls",
    del_ratio: float = DEL_RATIO,
    heldout: int = 256,
    **where: Any,
) -> tuple[Any, dict[str, Any]]:
    """Train TSDAE from ``base_model`` on ``sentences``; return the (unsaved) encoder and run statistics.

    ``where`` (``checkpoint_dir``, ``live_dir``, ``evaluator``) goes to :func:`embedlab.training.train`.

    A few sentences are held out to measure the reconstruction loss before and after training: the caller
    refuses a model that did not learn to reconstruct (:func:`check_learned`).
    """
    from embedlab.encoders import new_encoder
    from embedlab.training import train

    # Checkpoints hold the encoder only, not the decoder's own weights (cross-attention, LM-head transform):
    # resuming would pair a fresh decoder with a trained encoder and stale optimizer state, so start over.
    settings = settings.model_copy(update={"resume": False})
    sentences = clean_sentences(sentences)
    train_sents, held = split_heldout(sentences, heldout, settings.seed)
    model = new_encoder(base_model, pooling, settings.max_seq_length, settings.seed)  # both seed themselves
    loss = tsdae_loss(model, settings.seed)
    ties = tied_parameters(loss)
    held_pairs = noisy_pairs(held, del_ratio, settings.seed + 1) if held else None
    before = reconstruction_loss(loss, held_pairs) if held_pairs is not None else None
    dataset = noisy_pairs(train_sents, del_ratio, settings.seed)
    stats = train(model, dataset, loss, settings, None, **where)
    after = reconstruction_loss(loss, held_pairs) if held_pairs is not None else None
    words = [len(split_words(s)) for s in dataset["original"][:2000]]
    kept = [len(split_words(s)) for s in dataset["damaged"][:2000]]
    stats.update(
        sentences=len(train_sents),
        heldout_sentences=len(held),
        deleted_word_fraction=round(1 - sum(kept) / max(sum(words), 1), 4),
        recon_loss_before=before,
        recon_loss_after=after,
        tied_parameters=ties["shared"],
        pooling=pooling,
    )
    return model, stats


def check_learned(stats: dict[str, Any]) -> None:
    """Refuse a TSDAE model whose held-out reconstruction loss did not drop."""
    before, after = stats.get("recon_loss_before"), stats.get("recon_loss_after")
    if before is not None and after is not None and not after < before:
        raise EmbedlabError(
            f"TSDAE did not learn: held-out reconstruction loss {after:.4f} is not below {before:.4f} before training",
            "train longer (epochs), raise the learning rate, or use more sentences",
        )
