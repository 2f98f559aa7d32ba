"""The DVC promises users rely on, proven on the tiny pipeline in temporary git+DVC repos (in `make test`).

The pipeline is reproduced once per session (``conftest.tiny_repo``); each test works on a private copy of it
with its cache and data folder (``repro_copy``), so the whole file costs one pipeline plus a few stages.
"""

from __future__ import annotations

import json
import shutil

import yaml
from conftest import LR, changed_stages, dvc_status, repro_traced, run, run_dvc, set_param
from test_declared import code_closure, dvc_stages, scripts_of

from embedlab.finetune import RECIPES

TRAINING = {
    "train_cross_encoder",
    "train_augsbert@augsbert",
    "train_augsbert@augsbert-gold-only",
    "train_augsbert@augsbert-full-gold",
    "train_scratch@softmax",
    "train_scratch@cosine",
    "train_scratch@mnrl",
    *(f"finetune@{name}" for name in RECIPES),  # the tiny profile trains every recipe
    "train_tsdae",
    "train_simcse",
    "train_ct",
    "adapt_pretrain",
    "adapt_finetune@finetune",
    "adapt_finetune@adapted",
}


def _lock_outs(repo) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for s in lock.values() for o in s.get("outs", [])}


def test_the_whole_pipeline_from_a_fresh_repo_leaves_status_clean(tiny_repo):
    assert dvc_status(tiny_repo) == {}
    lock = yaml.safe_load((tiny_repo / "dvc.lock").read_text())["stages"]
    assert set(lock) == {s.name for s in dvc_stages(tiny_repo)}
    assert "Running stage" not in run_dvc(tiny_repo, "repro").stdout


def test_one_param_change_marks_exactly_the_stages_that_read_it(repro_copy):
    set_param(repro_copy, LR, 3.0e-5)
    assert changed_stages(repro_copy) == {"finetune@book"}
    set_param(repro_copy, LR, 5.0e-5)  # back: nothing changed
    assert changed_stages(repro_copy) == set()
    set_param(repro_copy, "launch.launcher", "torchrun")
    assert changed_stages(repro_copy) == TRAINING


def test_a_shared_module_edit_marks_every_stage_that_imports_it_and_nothing_else(repro_copy):
    path = repro_copy / "src/embedlab/batching.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    importers = {
        s.name for s in dvc_stages(repro_copy) if "src/embedlab/batching.py" in code_closure(scripts_of(s.cmd))
    }
    assert importers == TRAINING | {"silver_label"}  # silver_label: augsbert.py imports the training code
    assert changed_stages(repro_copy) == importers


def test_a_corrupted_raw_file_marks_prepare(repro_copy):
    raw = repro_copy.parent / "shared/data/stsb/sts-dev.csv"
    raw.chmod(0o644)
    raw.write_text(raw.read_text().replace("A man", "A woman", 1))
    assert changed_stages(repro_copy) == {"prepare"}  # its outputs change next, and everything downstream reruns
    twitter = repro_copy.parent / "shared/data/twitterpara/pit2015/test.label"
    twitter.chmod(0o644)
    twitter.write_text(twitter.read_text() + "\n")
    assert changed_stages(repro_copy) == {"prepare", "domain_corpus"}


def test_every_training_stage_gives_identical_bytes_twice(repro_copy):
    before = _lock_outs(repro_copy)
    out = repro_traced(repro_copy, "--force", "--single-item", *sorted(TRAINING)).stdout
    assert out.count("Running stage") == len(TRAINING)
    after = _lock_outs(repro_copy)
    models = [p for p in before if p.startswith("models/") and p not in {"models/base", "models/export"}]
    assert len(models) == len(TRAINING)  # one model per training stage
    assert [p for p in models if before[p] != after[p]] == []  # metrics and curves also hold timings: not compared


def test_a_param_change_reruns_exactly_the_stages_it_touches(lr_branch):
    """One learning rate changed (``conftest.lr_branch``): its model, that model's evaluation and the report ran."""
    assert lr_branch.ran == ["evaluate@finetune-book", "finetune@book", "report"]
    assert dvc_status(lr_branch.repo) == {}


def test_run_cache_restores_every_stage_and_an_uncommitted_run_on_a_fresh_clone(repro_copy, tmp_path):
    remote = tmp_path / "remote"
    run_dvc(repro_copy, "remote", "add", "-d", "shared", str(remote))
    run(["git", "commit", "-qam", "remote"], repro_copy)
    run_dvc(repro_copy, "push", "--run-cache")

    # A colleague's run that was pushed but never committed
    set_param(repro_copy, LR, 3.0e-5)
    out = run_dvc(repro_copy, "repro").stdout
    assert "Running stage 'finetune@book'" in out
    run_dvc(repro_copy, "push", "--run-cache")

    clone_parent = tmp_path / "clone"
    clone_parent.mkdir()
    shutil.copytree(repro_copy.parent / "shared", clone_parent / "shared")
    clone = clone_parent / "repo"
    run(["git", "clone", "-q", str(repro_copy), str(clone)], tmp_path)
    run_dvc(clone, "pull", "--run-cache")
    assert "Running stage" not in run_dvc(clone, "repro").stdout
    assert dvc_status(clone) == {}

    # Every stage restores from the run-cache alone (no dvc.lock to read hashes from)
    (clone / "dvc.lock").unlink()
    out = run_dvc(clone, "repro", "--pull").stdout
    assert "Running stage" not in out
    assert out.count("is cached - skipping run") == len(dvc_stages(clone))

    set_param(clone, LR, 3.0e-5)  # the same change, made independently
    out = run_dvc(clone, "repro", "--pull").stdout
    assert "Running stage" not in out
    for stage in ("finetune@book", "evaluate@finetune-book", "report"):
        assert f"Stage '{stage}' is cached - skipping run" in out
    assert json.loads((clone / "metrics/finetune-book.json").read_text()) == json.loads(
        (repro_copy / "metrics/finetune-book.json").read_text()
    )


def test_metrics_diff_between_branches_names_the_changed_model(lr_branch):
    diff = json.loads(run_dvc(lr_branch.repo, "metrics", "diff", "main", "lr", "--json").stdout)
    models = {path.removeprefix("metrics/").removesuffix(".json") for path in diff}
    assert "finetune-book" in models
    assert models.isdisjoint({"baseline", "finetune-improved", "augsbert", "scratch-mnrl", "tsdae"})
