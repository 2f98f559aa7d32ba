"""10.6.1: TSDAE noise, decoder tying, reconstruction learning, SimCSE/CT data, refusal checks, stages."""

from __future__ import annotations

import json
import random

import pytest

from embedlab.baselines import check_beats_floor
from embedlab.errors import DataError, EmbedlabError
from embedlab.text import clean_sentences, join_words, split_words
from embedlab.tsdae import check_learned, delete_words, noisy_pairs, split_heldout

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "The cat sits quietly on the warm mat.",
    "Two children are running through the park.",
    "A woman is slicing tomatoes in the kitchen.",
    "The old bridge was closed after the storm.",
    "Several people wait for the bus in the rain.",
    "A dog catches a red frisbee in mid-air.",
    "The chef prepares a large pot of soup.",
]


def test_delete_words_deletes_sixty_percent():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20)]
    sentence = " ".join(words)
    kept = 0
    for _ in range(2000):
        out = split_words(delete_words(sentence, rng, 0.6))
        assert set(out) <= set(words)  # only deletions, no new or reordered words
        assert out == [w for w in words if w in out]
        kept += len(out)
    deleted = 1 - kept / (2000 * len(words))
    assert 0.58 < deleted < 0.62, deleted  # deletes ~60 %, does not keep 60 %


def test_delete_words_never_empty_and_seeded():
    rng = random.Random(1)
    for text in ["Hi", "Hello there", "Yes !", "@user #tag", "a b c"] * 200:
        out = delete_words(text, rng, 0.9)
        assert out.strip()
        assert set(split_words(out)) <= set(split_words(text))
    a = [delete_words(s, random.Random(7)) for s in SENTENCES]
    b = [delete_words(s, random.Random(7)) for s in SENTENCES]
    assert a == b
    with pytest.raises(DataError):
        delete_words("   ", rng)


def test_words_split_and_join_without_nltk_data(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # no punkt/punkt_tab anywhere
    with pytest.raises(LookupError):
        nltk.data.find("tokenizers/punkt_tab")
    text = "He said: don't go, @anna! See https://t.co/x #news (3.5 km)."
    words = split_words(text)
    assert words[:4] == ["He", "said", ":", "don't"]
    assert "@anna" in words and "https://t.co/x" in words and "#news" in words and "3.5" in words
    assert join_words(words).startswith("He said: don't go, @anna!")
    assert delete_words(text, random.Random(0)).strip()


def test_noisy_pairs_columns_and_cleaning():
    ds = noisy_pairs([*SENTENCES, " ", SENTENCES[0], "  A man  is playing a guitar on the stage. "], 0.6, seed=3)
    assert ds.column_names == ["damaged", "original"]  # the order DenoisingAutoEncoderLoss reads
    assert ds["original"] == SENTENCES  # blanks and duplicates (after whitespace normalisation) dropped
    assert all(len(split_words(d)) < len(split_words(o)) for d, o in zip(ds["damaged"], ds["original"], strict=True))
    assert clean_sentences(["b", "a", "b", ""]) == ["b", "a"]
    train, held = split_heldout([str(i) for i in range(100)], 256, seed=0)
    assert len(held) == 10 and len(train) == 90 and not set(train) & set(held)


def test_simcse_and_ct_datasets():
    from embedlab.ct import ct_dataset
    from embedlab.simcse import simcse_pairs

    pairs = simcse_pairs([*SENTENCES, SENTENCES[1]])
    assert pairs.column_names == ["anchor", "positive"]
    assert pairs["anchor"] == pairs["positive"] == SENTENCES
    ct = ct_dataset(SENTENCES + [""])
    assert ct.column_names == ["text"] and ct["text"] == SENTENCES


def test_refusal_checks():
    check_learned({"recon_loss_before": 10.0, "recon_loss_after": 7.0})
    with pytest.raises(EmbedlabError, match="did not learn"):
        check_learned({"recon_loss_before": 7.0, "recon_loss_after": 7.5})
    check_beats_floor("m", 0.70, 0.64)
    with pytest.raises(EmbedlabError, match="bag-of-input-embeddings"):
        check_beats_floor("m", 0.30, 0.64)


@pytest.fixture(scope="module")
def tsdae_setup():
    from embedlab.encoders import new_encoder
    from embedlab.tsdae import tsdae_loss

    model = new_encoder(MINILM, "cls", max_seq_length=32)
    before = model.encode(SENTENCES[:2], convert_to_tensor=True)
    loss = tsdae_loss(model)
    return model, loss, before


def test_decoder_shares_encoder_weights(tsdae_setup):
    import torch

    from embedlab.tsdae import tied_parameters

    model, loss, before = tsdae_setup
    ties = tied_parameters(loss)
    encoder = model.transformers_model
    assert ties["word_embeddings"] and ties["lm_head_tied"]
    # every encoder tensor is a decoder tensor, except BERT's pooler head that sentence embeddings never use
    used = [n for n, _ in encoder.named_parameters() if not n.startswith("pooler.")]
    assert ties["shared"] == len(used) == 101
    dec_emb = loss.decoder.base_model.get_input_embeddings().weight
    assert dec_emb.data_ptr() == encoder.get_input_embeddings().weight.data_ptr()
    # tying must not reset the encoder: the decoder was loaded from the same checkpoint
    after = model.encode(SENTENCES[:2], convert_to_tensor=True)
    assert torch.allclose(before, after, atol=1e-6)
    with torch.no_grad():  # same storage: a change through the decoder is seen by the encoder
        dec_emb[0, 0] += 1.0
        assert encoder.get_input_embeddings().weight[0, 0] == dec_emb[0, 0]
        dec_emb[0, 0] -= 1.0


def test_tsdae_steps_lower_reconstruction_loss(tsdae_setup):
    import torch

    from embedlab.training import seed_everything
    from embedlab.tsdae import reconstruction_loss

    model, loss, _ = tsdae_setup
    seed_everything(0)
    pairs = noisy_pairs(SENTENCES, 0.6, seed=0)
    before = reconstruction_loss(loss, pairs)
    opt = torch.optim.AdamW([p for p in loss.parameters() if p.requires_grad], lr=1e-4)
    loss.train()
    for _ in range(4):
        features = [model.preprocess(pairs[c]) for c in ("damaged", "original")]
        value = loss(features, None)
        value.backward()
        opt.step()
        opt.zero_grad()
    after = reconstruction_loss(loss, pairs)
    assert before > 9.0  # the new LM-head transform starts near uniform over the ~30k vocabulary
    assert after < before - 0.5, (before, after)


def test_run_tsdae_through_trainer(tmp_path):
    """The Trainer path (tied decoder trained with the encoder) end to end on 40 sentences, 3 steps."""
    from embedlab.training import TrainSettings
    from embedlab.tsdae import run_tsdae

    sentences = [f"{s} Number {i}." for i, s in enumerate(SENTENCES * 5)]
    settings = TrainSettings(
        batch_size=8, learning_rate=1e-4, warmup=0.0, weight_decay=0.0, max_seq_length=24, max_steps=3, seed=0
    )
    model, stats = run_tsdae(MINILM, sentences, settings, checkpoint_dir=tmp_path / "ck", heldout=8)
    assert stats["steps"] == 3 and stats["sentences"] == 36 and stats["heldout_sentences"] == 4
    assert stats["tied_parameters"] == 101 and stats["pooling"] == "cls"
    assert 0.4 < stats["deleted_word_fraction"] < 0.75
    assert stats["recon_loss_after"] < stats["recon_loss_before"]
    check_learned(stats)
    assert model.encode(["hello"]).shape == (1, 384)
    assert (tmp_path / "ck").is_dir()  # kept until the checked model is published
    from embedlab.training import publish

    publish(model, tmp_path / "m", checkpoint_dir=tmp_path / "ck")
    assert (tmp_path / "m" / "model.safetensors").is_file() and not (tmp_path / "ck").exists()


def test_static_floor_on_real_data(data_dir):
    from embedlab import data
    from embedlab.baselines import static_floor

    val = data.load_eval_set(data.resolve_source("local", data_dir), "stsb_validation")
    floor = static_floor(MINILM, val)
    assert 0.55 < floor < 0.72, floor  # averaged input embeddings: well below the model (0.867), far above 0


def test_unsupervised_stages_on_tiny_profile(tiny_repo):
    # tiny profile: max_rows 80 for TSDAE, less min(heldout 16, a tenth) held out; 64 for SimCSE and CT; batch 8
    for name, rows in (("tsdae", 80 - 8), ("simcse", 64), ("ct", 64)):
        assert (tiny_repo / "models" / name / "modules.json").is_file()
        stats = json.loads((tiny_repo / "metrics" / f"train_{name}.json").read_text())
        assert (stats["rows"], stats["steps"]) == (rows, rows // 8), name  # one epoch of full batches
        sts = json.loads((tiny_repo / "metrics" / f"{name}.json").read_text())
        assert sts["stsb_validation"]["spearman_cosine"] > stats["stsb_validation_floor"]
        # curve_pairs null: the training-time score is on every pair, so it is the evaluate stage's number (#15)
        during, after = stats["stsb_validation_spearman_cosine"], sts["stsb_validation"]["spearman_cosine"]
        assert during == pytest.approx(after, abs=1e-5), name
    tsdae = json.loads((tiny_repo / "metrics" / "train_tsdae.json").read_text())
    assert tsdae["recon_loss_after"] < tsdae["recon_loss_before"]
    assert 0.5 < tsdae["deleted_word_fraction"] < 0.7


def test_train_simcse_refuses_a_collapsed_model(repro_copy):
    """A learning rate that wrecks the encoder: the stage exits 2, its model is not saved, the last good one stays."""
    import yaml
    from conftest import run_dvc

    weights = repro_copy / "models" / "simcse" / "model.safetensors"
    before, lock = weights.read_bytes(), (repro_copy / "dvc.lock").read_bytes()
    params = yaml.safe_load((repro_copy / "params.yaml").read_text())
    params["unsupervised"]["simcse"]["learning_rate"] = 0.05
    (repro_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run_dvc(repro_copy, "repro", "-s", "train_simcse", check=False)
    assert proc.returncode != 0
    assert "does not beat" in proc.stderr + proc.stdout or "became" in proc.stderr + proc.stdout
    assert weights.read_bytes() == before and (repro_copy / "dvc.lock").read_bytes() == lock  # restored (cache)
