"""Reliability: a table of bad inputs (params and data), each failing fast and cleanly without touching outputs."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import yaml
from conftest import dvc_env, make_repo, run

OUTPUT_DIRS = ("data", "models", "metrics")


def snapshot(repo: Path) -> dict[str, str]:
    """sha256 of every file under the output folders (and of the folders' listing)."""
    out = {}
    for top in OUTPUT_DIRS:
        for path in sorted((repo / top).rglob("*")) if (repo / top).exists() else []:
            rel = path.relative_to(repo).as_posix()
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_dir) -> Path:
    """A tiny-profile repo whose prepare stage and baseline evaluation have run once."""
    repo = make_repo(tmp_path_factory.mktemp("reliability"))
    run([sys.executable, "stages/prepare.py"], repo, env=dvc_env())
    return repo


def edit(raw: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()

# (id, stage args, params edits {dotted: value} or raw text, expected message parts)
PARAM_CASES = [
    ("typo-top-level-key", ["prepare.py"], {"sed": 1}, ["unknown key 'sed'", "allowed here"]),
    ("typo-nested-key", ["prepare.py"], {"prepare.nli_sizee": 10}, ["unknown key 'prepare.nli_sizee'"]),
    ("missing-key", ["prepare.py"], {"prepare.nli_size": DELETE}, ["missing key 'prepare.nli_size'"]),
    ("string-for-int", ["prepare.py"], {"prepare.nli_size": "400"}, ["prepare.nli_size = '400'", "integer"]),
    ("negative-size", ["prepare.py"], {"prepare.gold_size": -3}, ["prepare.gold_size = -3", "greater than 0"]),
    ("zero-size", ["prepare.py"], {"prepare.tsdae_rows": 0}, ["prepare.tsdae_rows = 0", "greater than 0"]),
    ("gold-plus-silver-too-big", ["prepare.py"], {"prepare.silver_size": 390}, ["gold_size + silver_size = 490"]),
    ("tsdae-rows-too-big", ["prepare.py"], {"prepare.tsdae_rows": 401}, ["tsdae_rows = 401 exceeds nli_size"]),
    ("unknown-source", ["prepare.py"], {"data.source": "s3"}, ["data.source = 's3'", "'auto', 'hub' or 'local'"]),
    (
        "unknown-eval-set",
        ["evaluate.py", "baseline"],
        {"evaluate.sets": ["stsb_validation", "sts12"]},
        ["evaluate.sets.1 = 'sts12'", "'stsb_validation', 'stsb_test' or 'sickr'"],
    ),
    (
        "eval-without-validation",
        ["evaluate.py", "baseline"],
        {"evaluate.sets": ["sickr"]},
        ["must include stsb_validation"],
    ),
    ("float-batch-size", ["evaluate.py", "baseline"], {"evaluate.batch_size": 1.5}, ["evaluate.batch_size = 1.5"]),
    (
        "unknown-model-name",
        ["evaluate.py", "baseline"],
        {"evaluate.models.baseline.model": "bert-base-uncasedd"},
        ["'bert-base-uncasedd' is not a local folder"],
    ),
    (
        "missing-model-path",
        ["evaluate.py", "baseline"],
        {"evaluate.models.baseline.model": "models/never-trained"},
        ["models/never-trained does not exist"],
    ),
    ("model-not-in-params", ["evaluate.py", "nosuchmodel"], {}, ["NAME one of", "baseline"]),
    ("yaml-not-a-mapping", ["prepare.py"], "- just\n- a list\n", ["must be a YAML mapping"]),
    ("yaml-syntax-error", ["prepare.py"], "prepare: {nli_size: 400\n", ["is not valid YAML"]),
]


@pytest.mark.parametrize(("case", "args", "change", "needles"), PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_bad_params(prepared, case, args, change, needles):
    params = prepared / "params.yaml"
    original = params.read_text()
    before = snapshot(prepared)
    try:
        if isinstance(change, str):
            params.write_text(change)
        else:
            raw = yaml.safe_load(original)
            for dotted, value in change.items():
                edit(raw, dotted, value)
            params.write_text(yaml.safe_dump(raw, sort_keys=False))
        proc = run(
            [sys.executable, f"stages/{args[0]}", *args[1:]],
            prepared,
            check=False,
            env=dvc_env() | {"HF_HUB_OFFLINE": "1"},
        )
    finally:
        params.write_text(original)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle in proc.stderr
    assert snapshot(prepared) == before


def write(folder: Path, rel: str, content: str | bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def good_folder(folder: Path, data_dir: Path) -> Path:
    """A data folder of symlinks to the real files, which a case then breaks one at a time."""
    for sub in ("stsb", "mnli", "snli", "sick"):
        (folder / sub).mkdir(parents=True)
        for f in (data_dir / sub).iterdir():
            os.symlink(f, folder / sub / f.name)
    return folder


def replace(folder: Path, rel: str, content: str | bytes) -> None:
    (folder / rel).unlink()
    write(folder, rel, content)


NLI_HEADER = "pairID,sentence1,sentence2,label\n"
DATA_CASES = [
    ("no-hub-no-folder", None, ["Hub is unreachable", "EMBEDLAB_DATA_DIR"]),
    ("folder-does-not-exist", "missing", ["does not exist", "EMBEDLAB_DATA_DIR"]),
    ("stsb-file-missing", lambda f: (f / "stsb" / "sts-dev.csv").unlink(), ["no STS-B validation file"]),
    (
        "nli-wrong-columns",
        lambda f: replace(f, "snli/snli_1.0_dev.csv", "id,a,b\n1,x,y\n"),
        ["snli_1.0_dev.csv lacks the NLI columns"],
    ),
    (
        "nli-unknown-label",
        lambda f: replace(f, "snli/snli_1.0_test.csv", NLI_HEADER + "1,A.,B.,maybe\n"),
        ["snli_1.0_test.csv: line 2: label 'maybe'"],
    ),
    (
        "nli-empty-sentence",
        lambda f: replace(f, "snli/snli_1.0_test.csv", NLI_HEADER + "1,A.,  ,neutral\n"),
        ["snli_1.0_test.csv: line 2: empty sentence2"],
    ),
    (
        "sts-score-out-of-range",
        lambda f: replace(f, "stsb/sts-dev.csv", "g\tf\ty\t1\t6.0\tA.\tB.\n"),
        ["sts-dev.csv: line 1: score 6.0 outside 0.0-5.0"],
    ),
    (
        "sts-non-utf8",
        lambda f: replace(f, "stsb/sts-test.csv", b"g\tf\ty\t1\t3.0\tA\xe9.\tB.\n"),
        ["sts-test.csv: line 1 is not valid UTF-8"],
    ),
    ("sick-wrong-columns", lambda f: replace(f, "sick/SICK.txt", "a\tb\n1\t2\n"), ["SICK.txt lacks column(s)"]),
]


@pytest.mark.parametrize(("case", "breaker", "needles"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data(prepared, tmp_path, data_dir, case, breaker, needles):
    env = dvc_env() | {"HF_HUB_OFFLINE": "1"}
    if breaker is None:
        env.pop("EMBEDLAB_DATA_DIR", None)
    elif breaker == "missing":
        env["EMBEDLAB_DATA_DIR"] = str(tmp_path / "missing")
    else:
        folder = good_folder(tmp_path / "data", data_dir)
        breaker(folder)
        env["EMBEDLAB_DATA_DIR"] = str(folder)
    before = snapshot(prepared)
    proc = run([sys.executable, "stages/prepare.py"], prepared, check=False, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr
    assert snapshot(prepared) == before


def test_truncated_parquet_is_named(prepared):
    target = prepared / "data" / "eval" / "stsb_validation.parquet"
    original = target.read_bytes()
    try:
        target.write_bytes(original[: len(original) // 2])
        before = snapshot(prepared)
        proc = run([sys.executable, "stages/evaluate.py", "baseline"], prepared, check=False, env=dvc_env())
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "stsb_validation.parquet is not a readable parquet file" in proc.stderr
        assert snapshot(prepared) == before
    finally:
        target.write_bytes(original)


def test_subset_larger_than_data(prepared):
    params = prepared / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["prepare"]["nli_size"] = 50000
    before = snapshot(prepared)
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        proc = run([sys.executable, "stages/prepare.py"], prepared, check=False, env=dvc_env())
    finally:
        params.write_text(original)
    assert proc.returncode == 2 and "only 39313" in proc.stderr and "prepare.nli_size" in proc.stderr
    assert snapshot(prepared) == before


def test_prepare_is_deterministic(prepared):
    first = {k: v for k, v in snapshot(prepared).items() if k.endswith((".parquet", ".json"))}
    run([sys.executable, "stages/prepare.py"], prepared, env=dvc_env())
    second = {k: v for k, v in snapshot(prepared).items() if k.endswith((".parquet", ".json"))}
    assert first and first == second
