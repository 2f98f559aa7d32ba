"""Every builder that creates fresh weights seeds itself: same seed, same weights, whatever ran before.

Each test builds twice with one seed, with unrelated random draws in between, and once with another seed: the
fresh weights must be exactly equal for the same seed and differ for another (so the test can fail).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _disturb() -> None:
    """Unrelated random draws, as any code between two builds might make."""
    import numpy as np
    import torch

    torch.rand(5)
    random.random()
    np.random.rand(3)


def _equal(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _state(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _three(build) -> tuple[dict, dict, dict]:
    """State dicts of ``build(seed)`` for seeds 1, 1 (after other random draws) and 2."""
    first = build(1)
    _disturb()
    return first, build(1), build(2)


def _check(build) -> None:
    first, again, other = _three(build)
    assert _equal(first, again), "the same seed gave different fresh weights"
    assert not _equal(first, other), "another seed gave the same weights: nothing random was seeded"


@pytest.fixture(scope="module")
def no_pooler_base(tmp_path_factory) -> str:
    """A tiny BERT checkpoint without pooler weights: loading it draws a fresh pooler (what a builder must seed)."""
    import shutil

    from transformers import BertConfig, BertModel

    from embedlab.models import resolve_model

    folder = tmp_path_factory.mktemp("no-pooler")
    minilm = Path(resolve_model(MINILM))
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, folder / name)
    return str(folder)


def test_cross_encoder_head_is_seeded():
    from embedlab.augsbert import build_cross_encoder

    def head(seed: int) -> dict:
        return _state(build_cross_encoder(MINILM, 32, seed).model.classifier)

    _check(head)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_new_encoder_missing_weights_are_seeded(no_pooler_base, pooling):
    from embedlab.encoders import new_encoder

    _check(lambda seed: _state(new_encoder(no_pooler_base, pooling, 16, seed)))


@pytest.fixture(scope="module")
def encoder():
    from embedlab.encoders import new_encoder

    return new_encoder(MINILM, "mean", 32, seed=0)


def test_softmax_loss_classifier_is_seeded(encoder):
    from embedlab.scratch import build_loss

    _check(lambda seed: _state(build_loss("softmax", encoder, seed).classifier))


def test_tsdae_decoder_is_seeded():
    from embedlab.encoders import new_encoder
    from embedlab.tsdae import tsdae_loss

    model = new_encoder(MINILM, "cls", 32, seed=0)
    encoder_weights = _state(model)
    _check(lambda seed: _state(tsdae_loss(model, seed).decoder))
    assert _equal(encoder_weights, _state(model)), "building a decoder changed the encoder"
