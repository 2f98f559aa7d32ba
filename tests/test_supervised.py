"""10.4 (three losses from a plain encoder) and 10.5.1 (fine-tuning recipes): data shapes, training, DVC wiring."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_dvc

from embedlab import baselines, finetune, scratch, training
from embedlab import nli as nli_pool
from embedlab.errors import EmbedlabError, ParamsError
from embedlab.params import SupervisedRunParams, parse_params
from embedlab.training import TrainSettings


def nli(rows: list[tuple[str, str, int]]):
    from datasets import Dataset

    return Dataset.from_dict(
        {"premise": [r[0] for r in rows], "hypothesis": [r[1] for r in rows], "label": [r[2] for r in rows]}
    )


POOL = nli(
    [
        ("A man plays a guitar.", "Someone makes music.", 0),
        ("A man plays a guitar.", "The man is on stage.", 1),
        ("A man plays a guitar.", "The man is asleep.", 2),
        ("A man plays a guitar.", "A person plays an instrument.", 0),
        ("Kids run in a park.", "Children are outside.", 0),
        ("Kids run in a park.", "The kids sit in a classroom.", 2),
        ("A dog swims.", "An animal is in the water.", 0),  # no contradiction for this premise
        ("A dog swims.", "The dog is brown.", 1),
        ("A woman cooks.", "Nobody is cooking.", 2),  # no entailment: no triplet
    ]
)


# --------------------------------------------------------------------------------------------------------------
# Data shapes (columns in the order each loss reads them)


def test_softmax_dataset_keeps_three_labels_in_loss_order():
    ds = scratch.softmax_dataset(POOL)
    assert ds.column_names == ["sentence1", "sentence2", "label"]
    assert ds["sentence2"] == POOL["hypothesis"] and ds["label"] == POOL["label"]


def test_cosine_dataset_maps_entailment_to_one_and_the_rest_to_zero():
    ds = scratch.cosine_dataset(POOL)
    assert ds.column_names == ["sentence1", "sentence2", "score"]
    assert ds["score"] == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]


def test_mnrl_triplets_use_same_premise_contradictions_and_seeded_soft_negatives():
    ds, counts = nli_pool.mnrl_triplets(POOL, seed=1)
    assert ds.column_names == ["anchor", "positive", "negative"]
    rows = list(zip(ds["anchor"], ds["positive"], ds["negative"], strict=True))
    assert rows[:3] == [
        ("A man plays a guitar.", "Someone makes music.", "The man is asleep."),
        ("A man plays a guitar.", "A person plays an instrument.", "The man is asleep."),
        ("Kids run in a park.", "Children are outside.", "The kids sit in a classroom."),
    ]
    anchor, positive, soft = rows[3]
    assert (anchor, positive) == ("A dog swims.", "An animal is in the water.")
    assert soft not in {"An animal is in the water.", "The dog is brown."}  # never its own premise's hypothesis
    assert counts == {"triplets": 4, "hard_negatives": 3, "soft_negatives": 1}
    again, _ = nli_pool.mnrl_triplets(POOL, seed=1)
    assert again["negative"] == ds["negative"]


def test_book_recipe_feeds_every_pair_as_a_positive_improved_only_entailments():
    book, counts = finetune.recipe_dataset(finetune.get_recipe("book"), POOL)
    assert book.column_names == ["anchor", "positive"] and counts == {"pairs": len(POOL)}
    assert ("A man plays a guitar.", "The man is asleep.") in zip(book["anchor"], book["positive"], strict=True)
    improved, counts = finetune.recipe_dataset(finetune.get_recipe("improved"), POOL)
    assert improved.column_names == ["anchor", "positive", "negative"] and counts["triplets"] == 4
    assert "The man is asleep." not in improved["positive"]


def test_recipes_and_losses_are_named_and_unknown_names_fail_cleanly():
    assert {"book", "improved"} <= set(finetune.RECIPES)  # the chapter's two; the registry may hold more
    assert all(finetune.get_recipe(name) is recipe for name, recipe in finetune.RECIPES.items())
    assert scratch.LOSSES == ("softmax", "cosine", "mnrl")
    with pytest.raises(ParamsError, match="unknown fine-tuning recipe 'nope'"):
        finetune.get_recipe("nope")
    with pytest.raises(ParamsError, match="unknown loss"):
        scratch.training_dataset("triplet", POOL)
    with pytest.raises(EmbedlabError, match="lacks column"):
        nli_pool.mnrl_triplets(POOL.remove_columns("label"))


def test_first_rows_and_the_chance_floor():
    assert len(nli_pool.first_rows(POOL, 4)) == 4 and nli_pool.first_rows(POOL, None) is POOL
    assert nli_pool.first_rows(POOL, 100) is POOL
    assert baselines.chance_floor(1500) == pytest.approx(0.085, abs=1e-3)
    baselines.refuse_collapsed(0.5, 1500, "m")
    for bad in (0.05, float("nan")):
        with pytest.raises(EmbedlabError, match="no better than a random ranking"):
            baselines.refuse_collapsed(bad, 1500, "m")


# --------------------------------------------------------------------------------------------------------------
# Params: every profile validates and carries the settings it promises


def load_profile(name: str):
    path = ROOT / ("params.yaml" if name == "cpu" else f"profiles/{name}.yaml")
    return parse_params(yaml.safe_load(path.read_text()), path)


@pytest.mark.parametrize("profile", ["cpu", "book", "tiny"])
def test_profiles_train_every_loss_and_recipe_and_evaluate_them(profile):
    p = load_profile(profile)
    assert tuple(p.train_scratch.losses) == scratch.LOSSES
    recipes = tuple(finetune.RECIPES)  # every profile trains every recipe: dvc.yaml's charts name each one's files
    assert tuple(p.finetune.recipes) == recipes
    names = [f"scratch-{k}" for k in scratch.LOSSES] + [f"finetune-{k}" for k in recipes]
    for name in names:
        assert p.evaluate.models[name].model == p.evaluate.models[name].dep == f"models/{name}"


def test_cpu_profile_trains_10_4_from_no_pretrained_weight_and_the_book_from_bert():
    cpu, book = load_profile("cpu"), load_profile("book")
    assert (cpu.train_scratch.encoder, cpu.train_scratch.embedding_dim) == ("static", 256)
    # the first 10,000 rows of the 39,313-row pool, as calibrated; no weight decay on a static table
    assert all(run.max_rows == 10_000 and run.weight_decay == 0.0 for run in cpu.train_scratch.losses.values())
    assert book.train_scratch.encoder == "transformer"


def test_book_profile_has_the_books_settings():
    p = load_profile("book")
    assert p.train_scratch.base_model == "models/base/bert-base-uncased"
    assert p.finetune.base_model == "models/base/all-MiniLM-L6-v2"
    assert p.base_models["bert-base-uncased"].hub == "bert-base-uncased"
    assert p.base_models["all-MiniLM-L6-v2"].hub == "sentence-transformers/all-MiniLM-L6-v2"
    runs = [*p.train_scratch.losses.values(), p.finetune.recipes["book"]]
    for run in runs:
        assert (run.epochs, run.batch_size, run.warmup, run.fp16) == (1, 32, 100, "auto")
        assert run.learning_rate == 5e-5  # the book leaves it unset: SentenceTransformerTrainingArguments' default
        assert run.max_rows is None and run.max_seq_length is None


def test_run_params_reject_bad_warmup_and_build_train_settings():
    with pytest.raises(ValueError, match="ratio in"):
        SupervisedRunParams(epochs=1.0, learning_rate=1e-5, warmup=1.5)
    run = SupervisedRunParams(epochs=2.0, learning_rate=1e-5, warmup=0.1, eval_steps=5)
    s = run.settings(7)
    assert isinstance(s, TrainSettings) and (s.seed, s.epochs, s.warmup, s.eval_steps) == (7, 2.0, 0.1, 5)


# --------------------------------------------------------------------------------------------------------------
# Training on a real subset, in process (a few seconds each)


def real_pool(data_dir: Path, n: int):
    from embedlab import data

    pool, _ = data.load_nli(data.resolve_source("local", data_dir), n, seed=42)
    return pool


@pytest.mark.realdata
def test_entailment_pairs_are_the_triplets_without_their_hard_negative(data_dir):
    pool = real_pool(data_dir, 39_313)  # the CPU profile's pool: every offline MNLI + SNLI dev/test row
    triplets, counts = finetune.recipe_dataset(finetune.IMPROVED, pool)
    pairs, pair_counts = finetune.recipe_dataset(finetune.RECIPES["improved-pairs"], pool)
    assert pairs.column_names == ["anchor", "positive"] and pair_counts == {"pairs": counts["triplets"]}
    assert (pairs["anchor"], pairs["positive"]) == (triplets["anchor"], triplets["positive"])
    assert counts == {"triplets": 13_619, "hard_negatives": 12_819, "soft_negatives": 800}


def real_stsb(data_dir: Path, n: int = 200):
    from embedlab import data

    return data.load_stsb(data.resolve_source("local", data_dir), "validation").select(range(n))


def tiny_settings(**kw) -> TrainSettings:
    base = dict(epochs=1.0, batch_size=16, learning_rate=5e-5, warmup=0.1, seed=42, max_seq_length=32)
    return TrainSettings(**{**base, "logging_steps": 1, "save_steps": 10_000, "resume": False, **kw})


def logged(live_dir: Path, metric: str) -> list[float]:
    path = live_dir / "plots" / "metrics" / f"{metric}.tsv"
    with path.open() as f:
        return [float(row[metric.split("/")[-1]]) for row in csv.DictReader(f, delimiter="\t")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Per loss: enough rows and epochs for the loss to fall clearly on a memorisable subset.
LOSS_RUNS = {
    "softmax": dict(rows=64, epochs=4.0, learning_rate=2e-4),
    "cosine": dict(rows=64, epochs=3.0, learning_rate=1e-4),
    "mnrl": dict(rows=160, epochs=3.0, learning_rate=1e-4),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """Each loss trained once on a real subset (shared by the tests below)."""
    from embedlab.evaluation import sts_evaluator

    pool = real_pool(data_dir, 200)
    evaluator = sts_evaluator(real_stsb(data_dir), "stsb_validation")
    out = tmp_path_factory.mktemp("supervised")
    runs = {}
    for loss, cfg in LOSS_RUNS.items():
        stats = scratch.run_scratch(
            "sentence-transformers/all-MiniLM-L6-v2",
            nli_pool.first_rows(pool, cfg["rows"]),
            loss,
            tiny_settings(epochs=cfg["epochs"], learning_rate=cfg["learning_rate"]),
            out / loss / "model",
            checkpoint_dir=out / loss / "ckpt",
            live_dir=out / loss / "live",
            evaluator=evaluator,
        )
        runs[loss] = (stats, out / loss)
    return runs


@pytest.mark.realdata
@pytest.mark.parametrize("loss", list(LOSS_RUNS))
def test_each_loss_trains_and_its_loss_goes_down(trained, loss):
    stats, folder = trained[loss]
    curve = logged(folder / "live", "train/loss")
    assert len(curve) >= 6 and all(math.isfinite(v) for v in curve)
    k = max(2, len(curve) // 4)
    first, last = sum(curve[:k]) / k, sum(curve[-k:]) / k
    assert last < 0.9 * first, f"{loss}: loss {first:.4f} -> {last:.4f}"
    # logging_steps 1: one row per optimizer step; batch 16, so ceil(rows / 16) steps per epoch
    assert stats["steps"] == len(curve) == len(logged(folder / "live", "train/learning_rate"))
    assert stats["steps"] == math.ceil(stats["rows"] / 16) * LOSS_RUNS[loss]["epochs"]
    assert training.sts_score(stats["final_eval"]) > 0.3
    saved = folder / "model"
    assert (saved / "model.safetensors").is_file() and not (saved / "README.md").exists()
    assert json.loads((saved / "modules.json").read_text())[1]["type"].endswith("Pooling")


@pytest.mark.realdata
def test_static_scratch_starts_from_random_weights_and_learns(tmp_path, data_dir):
    """10.4 on a CPU (``encoder: static``): no pretrained weight enters the encoder, and NLI training lifts it far
    above where it starts (averaged random token vectors already score by word overlap)."""
    import torch
    from safetensors.torch import load_file
    from transformers import set_seed

    from embedlab.encoders import new_static_encoder
    from embedlab.evaluation import sts_evaluator
    from embedlab.models import packaged_minilm_path

    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    table = new_static_encoder(minilm, 64, seed=7)[0].embedding.weight.detach()
    set_seed(7)
    assert torch.equal(table, torch.nn.EmbeddingBag(30522, 64).weight)  # PyTorch's own init, drawn after the seed
    assert not torch.equal(table, new_static_encoder(minilm, 64, seed=8)[0].embedding.weight)
    pretrained = load_file(Path(packaged_minilm_path()) / "model.safetensors")
    words = pretrained["embeddings.word_embeddings.weight"]
    assert words.shape == (30522, 384) and not torch.equal(table, words[:, :64])  # not even a slice of MiniLM's

    evaluator = sts_evaluator(real_stsb(data_dir, 400), "stsb_validation")
    untrained = training.sts_score(evaluator(new_static_encoder(minilm, 64, seed=42)))
    settings = tiny_settings(epochs=3.0, batch_size=128, learning_rate=0.2, weight_decay=0.0, max_seq_length=128)
    stats = scratch.run_scratch(
        minilm, real_pool(data_dir, 4000), "mnrl", settings, tmp_path / "m", encoder="static", embedding_dim=64,
        checkpoint_dir=tmp_path / "c", evaluator=evaluator,
    )  # fmt: skip
    trained = training.sts_score(stats["final_eval"])
    assert stats["encoder"] == "static" and trained > untrained + 0.2, (untrained, trained)  # 0.33 -> 0.63
    saved = load_file(tmp_path / "m" / "model.safetensors")
    assert {k: tuple(v.shape) for k, v in saved.items()} == {"embedding.weight": (30522, 64)}


@pytest.mark.realdata
def test_a_trained_models_metrics_have_every_key(trained, data_dir):
    from scipy.stats import spearmanr

    from embedlab import data
    from embedlab.evaluation import METRIC_KEYS, evaluate_model
    from embedlab.models import load_sentence_transformer

    source = data.resolve_source("local", data_dir)
    sets = {name: data.load_eval_set(source, name).select(range(60)) for name in data.EVAL_LOADERS}
    model = load_sentence_transformer(str(trained["mnrl"][1] / "model"))
    metrics = evaluate_model(model, sets)
    assert set(METRIC_KEYS) <= set(metrics)
    for name, pairs in sets.items():  # Spearman of cosine recomputed here with numpy and scipy
        got = metrics if name == "stsb_validation" else metrics[name]
        assert set(METRIC_KEYS) <= set(got), name
        a, b = (model.encode(pairs[c], normalize_embeddings=True) for c in ("sentence1", "sentence2"))
        expected = spearmanr(pairs["score"], (a * b).sum(axis=1)).statistic
        assert got["spearman_cosine"] == pytest.approx(expected, abs=1e-6), name


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["scratch-softmax", "finetune-improved"])
def test_same_seed_gives_the_same_model_bytes(tmp_path, data_dir, kind):
    pool = real_pool(data_dir, 120)
    digests = []
    for i in range(2):
        out = tmp_path / str(i)
        settings = tiny_settings(max_steps=3)
        if kind == "scratch-softmax":
            scratch.run_scratch(
                "sentence-transformers/all-MiniLM-L6-v2", pool, "softmax", settings, out, checkpoint_dir=tmp_path / "c"
            )
        else:
            finetune.run_finetune(
                "sentence-transformers/all-MiniLM-L6-v2", pool, "improved", settings, out, checkpoint_dir=tmp_path / "c"
            )
        digests.append(sha256(out / "model.safetensors"))
    assert digests[0] == digests[1]
    untouched = Path(__import__("embedlab.models", fromlist=["x"]).packaged_minilm_path()) / "model.safetensors"
    assert digests[0] != sha256(untouched)  # it did train


@pytest.mark.realdata
def test_matryoshka_recipe_is_improved_at_each_truncated_dimension(tmp_path, data_dir):
    from sentence_transformers import SentenceTransformer

    from embedlab.models import load_sentence_transformer

    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    recipe = finetune.get_recipe("matryoshka")
    loss = finetune.recipe_loss(recipe, load_sentence_transformer(minilm), minilm)
    assert (type(loss).__name__, type(loss.loss).__name__) == ("MatryoshkaLoss", "MultipleNegativesRankingLoss")
    assert list(loss.matryoshka_dims) == [384, 256, 128, 64]
    pool = real_pool(data_dir, 120)
    stats = finetune.run_finetune(
        minilm, pool, "matryoshka", tiny_settings(max_steps=3), tmp_path / "m", checkpoint_dir=tmp_path / "c"
    )
    assert stats["data"] == finetune.recipe_dataset(finetune.get_recipe("improved"), pool)[1]  # improved's data
    truncated = SentenceTransformer(str(tmp_path / "m"), truncate_dim=64)
    assert truncated.encode(["A man plays a guitar."]).shape == (1, 64)


@pytest.mark.realdata
def test_a_collapsed_model_is_refused_and_not_saved(tmp_path, data_dir):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from embedlab.evaluation import sts_evaluator

    class Collapsed(EmbeddingSimilarityEvaluator):  # what a model mapping every sentence to one point scores
        def __call__(self, model, *args, **kwargs):
            return {"stsb_validation_spearman_cosine": float("nan")}

    with pytest.raises(EmbedlabError, match="random ranking"):
        finetune.run_finetune(
            "sentence-transformers/all-MiniLM-L6-v2",
            real_pool(data_dir, 40),
            "book",
            tiny_settings(max_steps=1),
            tmp_path / "model",
            checkpoint_dir=tmp_path / "c",
            evaluator=sts_evaluator(real_stsb(data_dir), "stsb_validation", evaluator_cls=Collapsed),
        )
    assert not (tmp_path / "model").exists()


# --------------------------------------------------------------------------------------------------------------
# The DVC pipeline (tiny profile)


def test_pipeline_trains_evaluates_and_plots_every_supervised_model(tiny_repo):
    from embedlab.evaluation import METRIC_KEYS

    for name in [f"scratch-{k}" for k in scratch.LOSSES] + [f"finetune-{k}" for k in finetune.RECIPES]:
        metrics = json.loads((tiny_repo / "metrics" / "details" / f"{name}.json").read_text())  # the book's keys
        assert set(METRIC_KEYS) <= set(metrics), name
        headline = json.loads((tiny_repo / "metrics" / f"{name}.json").read_text())
        assert headline["stsb_validation"]["spearman_cosine"] == round(metrics["spearman_cosine"], 6), name
        assert (tiny_repo / "models" / name / "model.safetensors").is_file()
    shown = run_dvc(tiny_repo, "metrics", "show", "--json").stdout
    assert "finetune-improved" in shown and "plots/" not in shown  # training curves stay out of metrics
    plots = json.loads(run_dvc(tiny_repo, "plots", "show", "--json", "plots/finetune/book").stdout)
    assert "plots/finetune/book/plots/metrics/train/loss.tsv" in plots["data"], sorted(plots["data"])
    assert "plots/finetune/book/plots/metrics/eval/stsb_validation_spearman_cosine.tsv" in plots["data"]
