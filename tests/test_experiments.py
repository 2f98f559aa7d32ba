"""Comparing runs: `dvc metrics diff` across git branches, and a queued `dvc exp run` sweep.

Both start from a private copy of the session's reproduced tiny pipeline (``repro_copy``) and reproduce only the
stages the change touches.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import changed_stages, dvc_env, run, run_dvc

pytestmark = pytest.mark.slow

# The sweep: a learning rate of the cheapest training stage of the tiny profile, and the stage whose metrics show it.
SWEEP_PARAM = "finetune.recipes.improved.learning_rate"
SWEEP_TARGET = "evaluate@finetune-improved"
SWEEP_METRICS = "metrics/finetune-improved.json"

MARKER = """

_workspace_evaluate_model_with_scores = evaluate_model_with_scores


def evaluate_model_with_scores(*args, **kwargs):  # an experiment's own code: marks its headline metrics
    metrics, frame = _workspace_evaluate_model_with_scores(*args, **kwargs)
    metrics["ci95"]["stsb_test"]["spearman_cosine"]["low"] = -1.0  # -> stsb_test.ci95_low, a value no run gives
    return metrics, frame
"""


def set_param(repo: Path, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def get_param(repo: Path, dotted: str):
    node = yaml.safe_load((repo / "params.yaml").read_text())
    for key in dotted.split("."):
        node = node[key]
    return node


def flatten(obj, prefix=""):
    out = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_metrics_diff_against_main_from_a_branch(repro_copy):
    repo = repro_copy
    main_metrics = flatten(json.loads((repo / "metrics" / "baseline.json").read_text()))
    run(["git", "checkout", "-q", "-b", "fewer-pairs"], repo)
    set_param(repo, "prepare.eval_max_pairs", 60)
    assert changed_stages(repo) == {"prepare"}  # DVC lists downstream stages only once prepare has run
    run_dvc(repo, "repro", "evaluate@baseline")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "evaluate on 60 pairs"], repo)

    params = json.loads(run_dvc(repo, "params", "diff", "main", "--json").stdout)
    change = params["params.yaml"]["prepare.eval_max_pairs"]
    assert (change["old"], change["new"]) == (100, 60)

    diff = json.loads(run_dvc(repo, "metrics", "diff", "main", "--json").stdout)
    # DVC prints {} (exit 0) when it cannot read a revision: an empty diff is a failure, not "no change".
    assert diff, "dvc metrics diff main printed {}: it could not read main's metrics"
    assert set(diff) == {"metrics/baseline.json"}, "only the re-evaluated model may change"
    rows = diff["metrics/baseline.json"]
    branch_metrics = flatten(json.loads((repo / "metrics" / "baseline.json").read_text()))
    for key in ("stsb_validation.spearman_cosine", "stsb_test.spearman_cosine", "sickr.spearman_cosine"):
        assert rows[key]["old"] == pytest.approx(main_metrics[key])
        assert rows[key]["new"] == pytest.approx(branch_metrics[key])
        assert rows[key]["diff"] == pytest.approx(branch_metrics[key] - main_metrics[key])
    assert "stsb_validation.ci95_low" in rows


def wait_for_queue(repo: Path, names: set[str], timeout: float = 1200) -> dict[str, dict]:
    """Poll `dvc exp show --json` until every named experiment has finished; return name -> its show entry."""
    deadline = time.monotonic() + timeout
    while True:
        shown = json.loads(run_dvc(repo, "exp", "show", "--json").stdout)
        found = {}
        for commit in shown:
            for exp in commit.get("experiments") or []:
                if exp.get("name") in names:
                    found[exp["name"]] = exp
        states = {n: (e.get("executor") or {}).get("state") for n, e in found.items()}
        if len(found) == len(names) and all(s in (None, "success", "failed") for s in states.values()):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"experiments still not done after {timeout} s: {states}")
        time.sleep(5)


def test_queued_learning_rate_sweep_runs_each_experiments_own_code(repro_copy):
    repo = repro_copy
    try:
        workspace_lr = get_param(repo, SWEEP_PARAM)
    except KeyError:
        pytest.skip(f"{SWEEP_PARAM} is not in the tiny profile")
    evaluation = repo / "src" / "embedlab" / "evaluation.py"
    original = evaluation.read_text()
    # Each queued experiment checks the pipeline's outputs out into a temporary copy: link, don't copy ~1 GB.
    run_dvc(repo, "config", "--local", "cache.type", "hardlink,symlink")
    # Queue two learning rates while the workspace holds code that marks the metrics ...
    evaluation.write_text(original + MARKER)
    sweep = {"lr-low": "2e-5", "lr-high": "1e-4"}  # written as YAML 2e-05: params.py must read it as a float
    for name, lr in sweep.items():
        # A queued run works in .dvc/tmp/exps/...: the relative ../shared/data would not be the data there.
        data = f"data.local_dir={(repo.parent / 'shared' / 'data').resolve()}"
        run_dvc(repo, "exp", "run", "--queue", "-n", name, "-S", data, "-S", f"{SWEEP_PARAM}={lr}", SWEEP_TARGET)
    # ... then put the workspace code back, and make it the first thing Python would import (the trap: a stage
    # importing an installed package, or PYTHONPATH, would see the workspace's code, not the experiment's).
    evaluation.write_text(original)
    env = dvc_env()
    env["PYTHONPATH"] = str(repo / "src")
    try:
        run([sys.executable, "-m", "dvc", "queue", "start", "-j", "1"], repo, env=env)
        found = wait_for_queue(repo, set(sweep))
    finally:
        run_dvc(repo, "queue", "stop", check=False)
    logs = {n: run_dvc(repo, "queue", "logs", n, check=False).stdout for n in sweep}
    for name, exp in found.items():
        assert exp["executor"] is None or exp["executor"]["state"] == "success", f"{name} failed:\n{logs[name]}"

    results = {}
    for name, exp in found.items():
        data = exp["revs"][0]["data"]
        lr = flatten(data["params"]["params.yaml"]["data"])[SWEEP_PARAM]
        metrics = data["metrics"][SWEEP_METRICS]["data"]
        results[name] = (lr, metrics)
    assert results["lr-low"][0] == pytest.approx(2e-5) and results["lr-high"][0] == pytest.approx(1e-4)
    for name, (_, metrics) in results.items():
        assert metrics["stsb_test"]["ci95_low"] == -1.0, f"{name} ran the workspace's code, not its own"
    low, high = (results[n][1]["stsb_validation"]["spearman_cosine"] for n in ("lr-low", "lr-high"))
    assert low != high
    workspace = json.loads((repo / SWEEP_METRICS).read_text())
    assert workspace["stsb_test"]["ci95_low"] != -1.0 and get_param(repo, SWEEP_PARAM) == workspace_lr

    table = run_dvc(repo, "exp", "show", "--md", "--only-changed").stdout
    assert all(name in table for name in sweep) and "stsb_test.ci95_low" in table
