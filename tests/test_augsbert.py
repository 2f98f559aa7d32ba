"""Augmented SBERT: candidate strategies, the cross-encoder's labels and gate, gold+silver, and the DVC wiring."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, changed_stages, materialize_base_models, repro_traced

from embedlab import augsbert, silver
from embedlab.errors import EmbedlabError

GUITAR = [
    "A man is playing a guitar.",
    "A cat sleeps on the sofa.",
    "Someone plays an acoustic guitar on stage.",
    "Two teams compete in a football match.",
    "A kitten is napping on a couch.",
    "The players kick the ball across the field.",
]


def nli(rows: list[tuple[str, str, int]]):
    from datasets import Dataset

    return Dataset.from_dict(
        {"premise": [r[0] for r in rows], "hypothesis": [r[1] for r in rows], "label": [r[2] for r in rows]}
    )


def unordered(ds) -> list[tuple[str, str]]:
    return [silver.pair_key(a, b) for a, b in zip(ds["sentence1"], ds["sentence2"], strict=True)]


def assert_clean(candidates, gold, pool=None) -> None:
    """No gold pair (either order), no self-pair, no duplicate (either order); optionally no pool row."""
    keys = unordered(candidates)
    assert len(keys) == len(set(keys)), "duplicate candidate pairs"
    assert not set(keys) & silver.pair_keys(gold["premise"], gold["hypothesis"]), "a gold pair leaked into silver"
    assert all(a != b for a, b in zip(candidates["sentence1"], candidates["sentence2"], strict=True))
    if pool is not None:
        assert not set(keys) & silver.pair_keys(pool["premise"], pool["hypothesis"])


# --------------------------------------------------------------------------------------------------------------
# Candidate pairs


def test_finalize_pairs_drops_self_gold_and_duplicates_in_either_order():
    raw = [("a", "b"), ("b", "a"), ("c", "c"), ("g1", "g2"), ("g2", "g1"), ("d", "e"), ("d", "e")]
    assert silver.finalize_pairs(raw, exclude={silver.pair_key("g2", "g1")}) == [("a", "b"), ("d", "e")]


SMALL_GOLD = nli([("A man is playing a guitar.", "A cat sleeps on the sofa.", 1), ("g premise", "g hyp", 0)])
SMALL_POOL = nli(
    [
        ("A man is playing a guitar.", "A cat sleeps on the sofa.", 0),  # a gold pair inside the pool
        ("A man is playing a guitar.", "Someone plays an acoustic guitar on stage.", 0),
        ("Two teams compete in a football match.", "The players kick the ball across the field.", 2),
        ("A kitten is napping on a couch.", "A cat sleeps on the sofa.", 0),
        ("Two teams compete in a football match.", "The players kick the ball across the field.", 2),  # duplicate
    ]
)


class HashEmbedder:
    """A deterministic stand-in for a SentenceTransformer: bag of lower-cased words hashed into 64 dims."""

    def encode(self, sentences, **kwargs):
        import torch

        out = torch.zeros(len(sentences), 64)
        for i, s in enumerate(sentences):
            for w in s.lower().strip(".").split():
                out[i, sum(map(ord, w)) % 64] += 1
        return torch.nn.functional.normalize(out, dim=1)


@pytest.mark.parametrize("strategy", silver.STRATEGIES)
def test_every_strategy_avoids_gold_self_and_duplicates(strategy):
    cands, stats = silver.build_candidates(
        strategy, SMALL_GOLD, SMALL_POOL, seed=1, top_k=2, random_pairs_n=6, embedder=HashEmbedder()
    )
    assert len(cands) > 0 and set(cands["strategy"]) == {strategy}
    assert_clean(cands, SMALL_GOLD, SMALL_POOL if strategy == "random" else None)
    assert stats["pairs"] == len(cands) and stats["strategy"] == strategy
    if strategy == "given":  # the pool minus its gold pair and its duplicate, in order
        assert list(zip(cands["sentence1"], cands["sentence2"], strict=True)) == [
            tuple(SMALL_POOL[i][c] for c in ("premise", "hypothesis")) for i in (1, 2, 3)
        ]


def test_max_pairs_keeps_a_seeded_subset():
    kw = {"seed": 3, "top_k": 3, "embedder": HashEmbedder()}
    a, stats = silver.build_candidates("semantic", SMALL_GOLD, SMALL_POOL, max_pairs=2, **kw)
    b, _ = silver.build_candidates("semantic", SMALL_GOLD, SMALL_POOL, max_pairs=2, **kw)
    full, _ = silver.build_candidates("semantic", SMALL_GOLD, SMALL_POOL, **kw)
    assert len(full) > 2 and stats["dropped_by_max_pairs"] == len(full) - 2
    assert len(a) == 2 and a.to_dict() == b.to_dict() and set(unordered(a)) <= set(unordered(full))


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1)[:, :3].tolist()
    assert silver.nearest_neighbours(unit, top_k=3, batch_size=7) == expected


def test_nearest_neighbours_hand_made_angles():
    angles = np.radians([0, 10, 95, 100, 180])  # 0 and 10 are close, 95 and 100 are close, 180 is alone
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert silver.nearest_neighbours(emb, top_k=1) == [[1], [0], [3], [2], [3]]


def test_bm25_neighbours_are_lexical_and_skip_zero_scores():
    sentences = ["red apple pie", "green apple tart", "blue whale song", "whale song recording", "zzz"]
    assert silver.bm25_neighbours(sentences, top_k=1) == [[1], [0], [3], [2], []]


@pytest.fixture(scope="module")
def minilm():
    from embedlab.models import load_sentence_transformer

    return load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")


def test_semantic_pairs_with_minilm_find_the_true_paraphrases(minilm):
    pairs = silver.semantic_pairs(GUITAR, minilm, top_k=1)
    assert {silver.pair_key(a, b) for a, b in pairs} == {
        silver.pair_key(GUITAR[0], GUITAR[2]),
        silver.pair_key(GUITAR[1], GUITAR[4]),
        silver.pair_key(GUITAR[3], GUITAR[5]),
    }


@pytest.fixture(scope="module")
def tiny_nli(data_dir):
    from embedlab import data

    pool, _ = data.load_nli(data.resolve_source("local", data_dir), 300, seed=42)
    return pool.select(range(100)), pool.select(range(100, 300))


@pytest.mark.realdata
@pytest.mark.parametrize("strategy", silver.STRATEGIES)
def test_strategies_on_real_tiny_data(tiny_nli, minilm, strategy):
    gold, pool = tiny_nli
    # a pool that repeats two gold pairs (as SNLI's repeated premises can) must still yield no gold pair
    from datasets import concatenate_datasets

    pool = concatenate_datasets([pool, gold.select(range(2))])
    cands, stats = silver.build_candidates(
        strategy, gold, pool, seed=42, top_k=2, random_pairs_n=400, max_pairs=None, embedder=minilm
    )
    assert_clean(cands, gold, pool if strategy == "random" else None)
    expected_min = {"given": 195, "random": 400, "semantic": 200, "bm25": 200}[strategy]
    assert len(cands) >= expected_min, stats
    if strategy == "given":
        assert stats["dropped_gold_self_or_duplicate"] >= 2


# --------------------------------------------------------------------------------------------------------------
# Cross-encoder, labels, gold + silver


def test_book_label_mapping_and_holdout_split():
    pairs = augsbert.binary_pairs(nli([("p", "h0", 0), ("p", "h1", 1), ("p", "h2", 2)] * 10))
    assert pairs["label"][:3] == [1, 0, 0]
    train, held = augsbert.split_holdout(pairs, 0.2, seed=5)
    assert len(held) == 6 and len(train) == 24
    again, held2 = augsbert.split_holdout(pairs, 0.2, seed=5)
    assert held.to_dict() == held2.to_dict()
    with pytest.raises(EmbedlabError, match="holdout"):
        augsbert.split_holdout(pairs.select(range(2)), 0.2, seed=5)


def test_classification_metrics_and_the_majority_gate():
    y = [0, 0, 0, 1]
    always_no = augsbert.classification_metrics(y, np.array([0.1, 0.2, 0.3, 0.4]))
    assert always_no["accuracy"] == 0.75 == always_no["majority_accuracy"] and always_no["f1"] == 0.0
    assert always_no["average_precision"] == 1.0  # it still ranks the positive first
    with pytest.raises(augsbert.CrossEncoderRejected, match="does not beat the majority class"):
        augsbert.check_cross_encoder(always_no)
    good = augsbert.classification_metrics(y, np.array([0.1, 0.2, 0.3, 0.9]))
    assert good["accuracy"] == 1.0 and good["f1"] == 1.0
    augsbert.check_cross_encoder(good)


def test_hard_labels_are_argmax_and_soft_labels_probabilities():
    p = np.array([0.0, 0.2, 0.5, 0.51, 1.0], dtype=np.float32)
    assert augsbert.silver_labels(p, "hard").tolist() == [0, 0, 0, 1, 1]  # argmax: a tie goes to class 0
    assert augsbert.silver_labels(p, "soft").tolist() == pytest.approx(p.tolist())
    rows = augsbert.score_histogram(p, bins=4)
    assert [r["pairs"] for r in rows] == [2, 0, 2, 1] and rows[0]["bin"] == "0.00-0.25"


def test_cross_encoder_soft_labels_are_the_softmax_of_its_two_logits():
    model = augsbert.build_cross_encoder("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=32)
    p = augsbert.positive_probabilities(model, GUITAR, GUITAR[::-1], batch_size=4)
    logits = model.predict(list(zip(GUITAR, GUITAR[::-1], strict=True)), apply_softmax=False)
    assert logits.shape == (6, 2)
    expected = 1 / (1 + np.exp(logits[:, 0] - logits[:, 1]))  # softmax by hand: e^l1 / (e^l0 + e^l1)
    assert augsbert.silver_labels(p, "soft") == pytest.approx(expected, abs=1e-6)
    assert augsbert.silver_labels(p, "hard").tolist() == (logits[:, 1] > logits[:, 0]).astype(float).tolist()


def test_combine_deduplicates_keeping_gold_like_the_book():
    from datasets import Dataset

    gold = Dataset.from_dict({"sentence1": ["a", "b"], "sentence2": ["x", "y"], "label": [1, 0]})
    silv = Dataset.from_dict(
        {"sentence1": ["a", "c", "c", "x"], "sentence2": ["x", "z", "z", "a"], "label": [0.0, 0.7, 0.1, 0.0]}
    )
    out = augsbert.combine(gold, silv)
    # ("a","x") keeps gold's 1; the second ("c","z") goes; ("x","a") is another ordered pair, as in pandas
    assert list(zip(out["sentence1"], out["sentence2"], out["label"], strict=True)) == [
        ("a", "x", 1.0),
        ("b", "y", 0.0),
        ("c", "z", pytest.approx(0.7)),
        ("x", "a", 0.0),
    ]
    assert out.features["label"].dtype == "float32"
    assert len(augsbert.combine(gold)) == 2


def test_bi_encoder_is_transformer_plus_new_mean_pooling():
    from embedlab.encoders import new_encoder

    model = new_encoder("sentence-transformers/all-MiniLM-L6-v2", "mean", max_seq_length=64)
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model[1].pooling_mode == "mean" and model.max_seq_length == 64


def _load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("refuse", [True, False])
def test_cross_encoder_stage_gate_against_a_majority_no_model_can_beat(tmp_path, monkeypatch, capsys, refuse):
    """Nothing faked: the stage builds, trains (3 steps) and scores a real cross-encoder. Every gold pair is a
    contradiction, so the held-out majority class is right on all 10 pairs and no model can beat it: with
    refuse_below_majority the stage exits 2 and writes no model; without, it warns and publishes the model."""
    from embedlab.errors import run_stage
    from embedlab.io import write_parquet

    params = yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text())
    params["cross_encoder"]["refuse_below_majority"] = refuse
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    materialize_base_models(tmp_path)  # cross_encoder.base: models/base/all-MiniLM-L6-v2
    write_parquet(tmp_path / "data/prepared/gold.parquet", nli([(f"p{i}", f"h{i}", 2) for i in range(50)]))
    monkeypatch.chdir(tmp_path)
    stage = _load_stage("train_cross_encoder")
    if refuse:
        with pytest.raises(SystemExit) as exit_:
            run_stage(stage.main)
        assert exit_.value.code == 2
        assert "does not beat the majority class (1.000) on 10 gold pairs" in capsys.readouterr().err
        assert not (tmp_path / "models/cross_encoder").exists()
    else:
        run_stage(stage.main)
        assert "warning: the cross-encoder does not beat the majority class" in capsys.readouterr().out
        assert (tmp_path / "models/cross_encoder/config.json").is_file()
    metrics = json.loads((tmp_path / "metrics/cross_encoder.json").read_text())
    held = metrics["holdout"]
    assert (held["pairs"], held["positive_rate"], held["majority_accuracy"], held["beats_majority"]) == (
        10,
        0.0,
        1.0,
        False,
    )
    assert held["accuracy"] == pytest.approx(1 - held["predicted_positive_rate"])  # every held-out label is 0
    assert (metrics["train"]["pairs"], metrics["train"]["steps"]) == (40, 3)  # ceil(40 / batch 16), 1 epoch


# --------------------------------------------------------------------------------------------------------------
# The pipeline on the tiny profile


def cosine_spearman(model_dir: Path, pairs: Path) -> float:
    """Spearman of cosine vs gold, recomputed without embedlab: sentence-transformers, numpy and scipy only."""
    import pandas as pd
    from scipy.stats import spearmanr
    from sentence_transformers import SentenceTransformer

    df = pd.read_parquet(pairs)
    model = SentenceTransformer(str(model_dir), device="cpu")
    a, b = (model.encode(df[c].tolist(), batch_size=32, normalize_embeddings=True) for c in ("sentence1", "sentence2"))
    return float(spearmanr(df["score"], (a * b).sum(axis=1)).statistic)


def test_tiny_pipeline_outputs(tiny_repo):
    """Each number the AugSBERT branch writes, recomputed from the models and data it wrote."""
    import pandas as pd
    from sentence_transformers.cross_encoder import CrossEncoder

    from embedlab.io import read_parquet

    cross = CrossEncoder(str(tiny_repo / "models/cross_encoder"), device="cpu")
    gold = augsbert.binary_pairs(read_parquet(tiny_repo / "data/prepared/gold.parquet"))
    _, holdout = augsbert.split_holdout(gold, 0.2, seed=42)  # cross_encoder.holdout and seed of the tiny profile
    logits = cross.predict(list(zip(holdout["sentence1"], holdout["sentence2"], strict=True)))
    y = np.array(holdout["label"])
    ce = json.loads((tiny_repo / "metrics/cross_encoder.json").read_text())["holdout"]
    assert ce["pairs"] == len(y) == 20
    assert ce["accuracy"] == pytest.approx(float((logits.argmax(axis=1) == y).mean()))
    assert ce["majority_accuracy"] == pytest.approx(max(y.mean(), 1 - y.mean()))

    cands = pd.read_parquet(tiny_repo / "data/silver/candidates.parquet")
    labeled = pd.read_parquet(tiny_repo / "data/silver/labeled.parquet")
    assert set(cands["strategy"]) == {"given"} and len(labeled) == len(cands) > 250
    probs = cross.predict(list(zip(labeled["sentence1"], labeled["sentence2"], strict=True)), apply_softmax=True)
    assert labeled["score"].to_numpy() == pytest.approx(probs[:, 1], abs=1e-5)  # P(positive) of these very pairs
    assert labeled["label"].tolist() == probs.argmax(axis=1).astype(float).tolist()  # silver_label.labels: hard
    stats = json.loads((tiny_repo / "metrics/silver_stats.json").read_text())
    assert (stats["positive"], stats["negative"]) == (int(labeled["label"].sum()), int((labeled["label"] == 0).sum()))
    hist = pd.read_csv(tiny_repo / "plots/silver_label/score_histogram.csv")
    by_hand = np.bincount(np.minimum((labeled["score"].to_numpy() * 10).astype(int), 9), minlength=10)
    assert hist["pairs"].tolist() == by_hand.tolist()  # silver_label.histogram_bins: 10

    for name in ("augsbert", "augsbert-gold-only", "augsbert-full-gold"):
        metrics = json.loads((tiny_repo / "metrics/details" / f"{name}.json").read_text())
        model = tiny_repo / "models" / name
        for eval_set, value in (
            ("stsb_validation", metrics["spearman_cosine"]),
            ("sickr", metrics["sickr"]["spearman_cosine"]),
        ):
            expected = cosine_spearman(model, tiny_repo / "data/eval" / f"{eval_set}.parquet")
            assert value == pytest.approx(expected, abs=1e-5), (name, eval_set)


def test_changing_the_strategy_reruns_exactly_the_silver_branch(repro_copy):
    params = yaml.safe_load((repro_copy / "params.yaml").read_text())
    text = (repro_copy / "params.yaml").read_text()
    assert params["silver_pairs"]["strategy"] == "given"
    (repro_copy / "params.yaml").write_text(text.replace("strategy: given", "strategy: semantic", 1))
    assert changed_stages(repro_copy) == {"silver_pairs"}
    out = repro_traced(repro_copy).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}
    expected = {"silver_pairs", "silver_label", "train_augsbert@augsbert", "evaluate@augsbert"}
    assert expected <= ran, out
    # anything else that ran may only consume the new metrics (e.g. a results report): it trains no model
    lock = yaml.safe_load((repro_copy / "dvc.lock").read_text())["stages"]
    for extra in ran - expected:
        assert not any(o["path"].startswith("models/") for o in lock[extra].get("outs", [])), (extra, out)
    assert changed_stages(repro_copy) == set()
    import pandas as pd

    assert set(pd.read_parquet(repro_copy / "data/silver/candidates.parquet")["strategy"]) == {"semantic"}
