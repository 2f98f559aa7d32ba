"""The foundation end to end: stages as DVC runs them, in temporary git+DVC copies of this repo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from conftest import dvc_env, make_repo, repro_traced, run, run_dvc

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


def test_curve_pairs_span_the_whole_validation_set(data_dir):
    """STS-B is ordered by genre (captions, news, forums): the training-time subset must not be the captions."""
    from embedlab import data
    from embedlab.evaluation import curve_pairs

    val = data.load_stsb(data.Source("local", data_dir), "validation")
    sub = curve_pairs(val, 500)
    assert len(sub) == 500 and curve_pairs(val, None) is val and curve_pairs(val, 10_000) is val
    assert sub[0] == val[0]  # starts with the captions...
    assert sub[499]["sentence1"] in set(val.select(range(len(val) - 5, len(val)))["sentence1"])  # ...ends in forums


def test_curve_scores_on_a_subset_say_so_in_their_keys(tmp_path, data_dir):
    """Issue #15: a training-time score on 500 of the 1,500 pairs must not be named like the evaluate stage's."""
    from embedlab import data
    from embedlab.evaluation import read_curve_pairs, sts_evaluator
    from embedlab.io import write_parquet

    path = tmp_path / "stsb_validation.parquet"
    write_parquet(path, data.load_stsb(data.Source("local", data_dir), "validation"))
    name, pairs = read_curve_pairs(500, path)
    assert (name, len(pairs)) == ("stsb_validation_500of1500", 500)
    evaluator = sts_evaluator(pairs, name)  # prefixes every key it logs with its name
    assert evaluator.prefix_name_to_metrics({"spearman_cosine": 0.5}, evaluator.name) == {
        "stsb_validation_500of1500_spearman_cosine": 0.5
    }
    assert [(n, len(p)) for n, p in (read_curve_pairs(None, path), read_curve_pairs(1500, path))] == [
        ("stsb_validation", 1500), ("stsb_validation", 1500)
    ]  # fmt: skip


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
    repro_traced(repo, *targets)
    status = json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}")
    assert status == {}
    assert "Running stage" not in run_dvc(repo, "repro", *targets).stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["batch_size"] = 16
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}"))
    assert changed == {"evaluate@baseline"}
    assert "Running stage 'evaluate@baseline'" in repro_traced(repo, *targets).stdout
    assert json.loads(run_dvc(repo, "status", "--json", *targets).stdout or "{}") == {}


HEAVY = ("torch", "transformers", "sentence_transformers", "datasets")
# Runs a stage script as `python stages/<script>` would, then reports which heavy libraries it had imported when it
# exited: "fails fast" means before any of them, checked by what happened rather than by a clock (a loaded machine
# makes any time limit flaky).
REPORT_IMPORTS = (
    "import atexit, runpy, sys\n"
    f"atexit.register(lambda: print('imported:', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr))\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def stage(repo: Path, script: str, *args: str, env_updates: dict | None = None):
    """Run ``stages/<script>``; returns the process and the heavy libraries it had imported when it exited."""
    env = dvc_env() | (env_updates or {})
    for key, value in list(env.items()):
        if value is None:
            del env[key]
    proc = run([sys.executable, "-c", REPORT_IMPORTS, f"stages/{script}", *args], repo, check=False, env=env)
    imported = next(line for line in proc.stderr.splitlines() if line.startswith("imported: "))
    return proc, imported.removeprefix("imported: ")


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
    proc, imported = stage(tiny, "prepare.py", env_updates={"EMBEDLAB_DATA_DIR": None, "HF_HUB_OFFLINE": "1"})
    assert_clean_failure(proc, "nowhere does not exist", "data.local_dir")
    assert imported == "[]" and not list((tiny / "data").rglob("*.parquet"))


def test_prepare_local_folder_missing_a_file(tiny, tmp_path, data_dir):
    partial = tmp_path / "partial"
    partial.mkdir()
    for present in ("mnli", "snli", "sick"):  # no stsb
        os.symlink(data_dir / present, partial / present)
    proc, _ = stage(tiny, "prepare.py", env_updates={"EMBEDLAB_DATA_DIR": str(partial)})
    assert_clean_failure(proc, "no STS-B validation file")
    assert not (tiny / "data" / "prepared" / "nli.parquet").exists()


def test_prepare_bad_param_fails_fast(tiny):
    set_param(tiny, "prepare.gold_size", -1)
    proc, imported = stage(tiny, "prepare.py")
    assert_clean_failure(proc, "prepare.gold_size = -1", "greater than 0")
    assert imported == "[]"  # refused before any heavy library was imported


def test_evaluate_unknown_model_name(tiny):
    set_param(tiny, "evaluate.models", {"baseline": {"model": "bert-base-uncasedd", "dep": "params.yaml"}})
    proc, imported = stage(tiny, "evaluate.py", "baseline", env_updates={"HF_HUB_OFFLINE": "1"})
    assert_clean_failure(proc, "'bert-base-uncasedd' is not a local folder")
    assert "'torch'" not in imported and not (tiny / "metrics" / "baseline.json").exists()
