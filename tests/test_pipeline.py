"""The foundation end to end: stages as DVC runs them, in temporary git+DVC copies of this repo."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import dvc_env, make_repo, run, run_dvc

BOOK_BASELINE = 0.8672  # the book's STS-B validation Spearman (cosine) for the untouched all-MiniLM-L6-v2


def test_untouched_minilm_scores_the_books_number(data_dir):
    from embedlab import data
    from embedlab.evaluation import METRIC_KEYS, evaluate_sts
    from embedlab.models import load_sentence_transformer

    val = data.load_stsb(data.Source("local", data_dir), "validation")
    scores = evaluate_sts(load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2"), val, "v")
    assert list(scores) == METRIC_KEYS
    assert scores["spearman_cosine"] == pytest.approx(BOOK_BASELINE, abs=0.0005)
    assert scores["pearson_cosine"] == pytest.approx(0.8696, abs=0.0005)


def test_encoding_each_distinct_sentence_once_gives_the_evaluators_numbers(data_dir):
    """evaluate_model (one encoding of the union of the sets' sentences) = the evaluator encoding each column."""
    from embedlab import data
    from embedlab.evaluation import METRIC_KEYS, evaluate_model, evaluate_sts
    from embedlab.models import load_sentence_transformer

    model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
    val = data.load_stsb(data.Source("local", data_dir), "validation").select(range(400))
    test = data.load_stsb(data.Source("local", data_dir), "test").select(range(300))
    sets = {"stsb_validation": val, "stsb_test": test}
    pooled = evaluate_model(model, sets)
    for name, dataset in sets.items():
        alone = evaluate_sts(model, dataset, name)  # the evaluator's own two encoding passes
        got = pooled if name == "stsb_validation" else pooled[name]
        assert {k: got[k] for k in METRIC_KEYS} == pytest.approx(alone, abs=1e-6), name


def test_curve_pairs_span_the_whole_validation_set(data_dir):
    """STS-B is ordered by genre (captions, news, forums): the training-time subset must not be the captions."""
    from embedlab import data
    from embedlab.evaluation import curve_pairs

    val = data.load_stsb(data.Source("local", data_dir), "validation")
    sub = curve_pairs(val, 500)
    assert len(sub) == 500 and curve_pairs(val, None) is val and curve_pairs(val, 10_000) is val
    assert sub[0] == val[0]  # starts with the captions...
    assert sub[499]["sentence1"] in set(val.select(range(len(val) - 5, len(val)))["sentence1"])  # ...ends in forums


@pytest.mark.slow
def test_dvc_repro_cpu_profile_baseline(tmp_path, data_dir):
    repo = make_repo(tmp_path, profile=None)
    run_dvc(repo, "repro", "evaluate@baseline")
    headline = json.loads((repo / "metrics" / "baseline.json").read_text())
    assert headline["stsb_validation"]["spearman_cosine"] == pytest.approx(BOOK_BASELINE, abs=0.0005)
    metrics = json.loads((repo / "metrics" / "details" / "baseline.json").read_text())  # the book's 10 keys per set
    assert set(metrics["stsb_test"]) == set(metrics["sickr"]) and len(metrics["sickr"]) == 10
    meta = json.loads((repo / "data" / "prepared" / "metadata.json").read_text())
    assert meta["source"] == "local" and meta["nli"]["pool_rows"] == 39313
    assert meta["eval"] == {"sickr": {"pairs": 4906}, "stsb_test": {"pairs": 1379}, "stsb_validation": {"pairs": 1500}}


def test_second_repro_runs_nothing_and_eval_param_reruns_only_evaluation(tmp_path, data_dir):
    """The foundation's stages (prepare, evaluate@baseline) in a fresh git+DVC repo, tiny profile."""
    repo = make_repo(tmp_path)
    targets = ["prepare", "evaluate@baseline"]
    run_dvc(repo, "repro", *targets)
    status = json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}")
    assert status == {}
    assert "Running stage" not in run_dvc(repo, "repro", *targets).stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["batch_size"] = 16
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}"))
    assert changed == {"evaluate@baseline"}
    assert "Running stage 'evaluate@baseline'" in run_dvc(repo, "repro", *targets).stdout
    assert json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}") == {}


def stage(repo: Path, script: str, *args: str, env_updates: dict | None = None):
    env = dvc_env() | (env_updates or {})
    for key, value in list(env.items()):
        if value is None:
            del env[key]
    start = time.perf_counter()
    proc = run([sys.executable, f"stages/{script}", *args], repo, check=False, env=env)
    return proc, time.perf_counter() - start


@pytest.fixture
def tiny(tmp_path, data_dir):
    return make_repo(tmp_path)


def set_param(repo: Path, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def assert_clean_failure(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr


def test_prepare_without_hub_or_local_folder(tiny, tmp_path):
    set_param(tiny, "data.local_dir", str(tmp_path / "nowhere"))
    proc, seconds = stage(tiny, "prepare.py", env_updates={"EMBEDLAB_DATA_DIR": None, "HF_HUB_OFFLINE": "1"})
    assert_clean_failure(proc, "nowhere does not exist", "data.local_dir")
    assert seconds < 10 and not list((tiny / "data").rglob("*.parquet"))


def test_prepare_local_folder_missing_a_file(tiny, tmp_path, data_dir):
    partial = tmp_path / "partial"
    partial.mkdir()
    os.symlink(data_dir / "mnli", partial / "mnli")
    os.symlink(data_dir / "sick", partial / "sick")
    proc, _ = stage(tiny, "prepare.py", env_updates={"EMBEDLAB_DATA_DIR": str(partial)})
    assert_clean_failure(proc, "no STS-B validation file")
    assert not (tiny / "data" / "prepared" / "nli.parquet").exists()


def test_prepare_subset_larger_than_data(tiny):
    set_param(tiny, "prepare.nli_size", 60000)
    proc, _ = stage(tiny, "prepare.py")
    assert_clean_failure(proc, "prepare.nli_size", "only 39313")


def test_prepare_bad_param_fails_fast(tiny):
    set_param(tiny, "prepare.gold_size", -1)
    proc, seconds = stage(tiny, "prepare.py")
    assert_clean_failure(proc, "prepare.gold_size = -1", "greater than 0")
    assert seconds < 5


def test_evaluate_unknown_model_name(tiny):
    set_param(tiny, "evaluate.models", {"baseline": {"model": "bert-base-uncasedd", "dep": "params.yaml"}})
    proc, seconds = stage(tiny, "evaluate.py", "baseline", env_updates={"HF_HUB_OFFLINE": "1"})
    assert_clean_failure(proc, "'bert-base-uncasedd' is not a local folder")
    assert seconds < 10 and not (tiny / "metrics" / "baseline.json").exists()
