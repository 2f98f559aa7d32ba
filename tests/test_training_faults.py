"""Faults around training (#16, items 4, 6, 7), each through the real stage on the tiny profile.

* a full disk (a real one: a small tmpfs mounted over checkpoints/ or models/, which needs root) is one error line
  with the path, the space needed and the space free; the last checkpoint is kept, so the rerun only saves;
* a broken model folder (only config.json, model.safetensors cut in half or a symlink loop, bad JSON) is one line
  naming the file;
* a failed or refused run leaves the last good run's model and curves byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import dvc_env, make_repo, run, set_param

from embedlab.errors import EmbedlabError
from embedlab.models import check_model_folder, load_sentence_transformer, resolve_model

STAGE = ["stages/finetune.py", "book"]
MODEL, CURVES, CKPT = Path("models/finetune-book"), Path("plots/finetune/book"), Path("checkpoints/finetune-book")
BASE = Path("models/base/all-MiniLM-L6-v2")
STEPS = 3  # tiny profile: 48 rows, batch 16, one epoch
NO_SPACE = re.compile(r"it needs about ([\d.]+) MB, ([\d.]+) MB free")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, data_dir) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("faults"))
    run([sys.executable, "stages/prepare.py"], repo)
    return repo


def stage(repo: Path) -> subprocess.CompletedProcess:
    env = {**dvc_env(), "OMP_NUM_THREADS": "1"}  # a loaded 2-core machine: threads spinning slow a step 10x
    return run([sys.executable, *STAGE], repo, check=False, env=env, timeout=600)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a refused stage (exit 2, a fix line, no traceback)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # split on \r too: a progress bar may end without a newline before the error
    errors = [line[line.index("error: ") :] for line in re.split(r"[\r\n]", proc.stderr) if "error: " in line]
    assert len(errors) == 1 and "  fix: " in proc.stderr, proc.stderr
    return errors[0]


@contextlib.contextmanager
def small_disk(folder: Path, size_bytes: int) -> Iterator[Path]:
    """A real file system of ``size_bytes`` mounted over ``folder`` (tmpfs); skips where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes // 1024}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"a full disk is faked by mounting a small tmpfs, which needs root: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def steps(tsv: Path) -> list[int]:
    return [int(line.split("\t")[0]) for line in tsv.read_text().splitlines()[1:]]


# --- item 4: a full disk ------------------------------------------------------------------------------------------


def test_full_checkpoint_disk_is_one_line_and_publishes_nothing(repo):
    with small_disk(repo / "checkpoints", 2 * 2**20):
        line = error_line(stage(repo))
        assert f"no space left to write a checkpoint to {CKPT}" in line, line
        needed, free = map(float, NO_SPACE.search(line).groups())
        assert needed > 200 and free < 2, line  # the weights (87 MB) and Adam's two moments; a 2 MB disk
        assert not list((repo / CKPT).glob("checkpoint-*")), "a half-written checkpoint only takes space"
    assert not (repo / MODEL).exists() and not (repo / CURVES).exists()


def test_full_model_disk_keeps_the_last_checkpoint_and_the_rerun_only_saves(repo, tmp_path):
    shutil.copytree(repo / BASE, tmp_path / "base")  # the base model stays readable on the small disk
    base_bytes = sum(len(b) for b in files(tmp_path / "base").values())
    with small_disk(repo / "models", base_bytes + 16 * 2**20):
        shutil.copytree(tmp_path / "base", repo / BASE)
        line = error_line(stage(repo))
        assert f"no space left to write the model to {MODEL}" in line, line
        needed, free = map(float, NO_SPACE.search(line).groups())
        assert 80 < needed < 100 and free < 17, line  # all-MiniLM-L6-v2's 22.7M float32 parameters
        assert not (repo / MODEL).exists() and not [p for p in (repo / "models").iterdir() if p.name != "base"]
    state = json.loads((repo / CKPT / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS  # the final checkpoint survived the failed save
    assert not (repo / CURVES).exists(), "curves are published with the model, not before"

    proc = stage(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"resuming from {CKPT}/checkpoint-{STEPS}" in proc.stdout, proc.stdout
    assert (repo / MODEL / "model.safetensors").stat().st_size > 80 * 2**20
    assert not (repo / CKPT).exists(), "checkpoints go once the model and curves are published"
    # the curves are an uninterrupted run's: restored from the checkpoint, so the points logged after it (the end
    # of training, the final evaluation) are not there twice
    assert steps(repo / CURVES / "plots/metrics/train/loss.tsv") == list(range(1, STEPS + 1))
    assert steps(repo / CURVES / "plots/metrics/train/train_loss.tsv") == [STEPS]
    assert steps(repo / CURVES / "plots/metrics/eval/stsb_validation_spearman_cosine.tsv") == [2, STEPS]


# --- item 7: a failed run leaves the good run's outputs -----------------------------------------------------------


@pytest.mark.parametrize("learning_rate", [1e30, 10.0], ids=["diverges", "refused"])
def test_a_failed_run_leaves_the_good_runs_model_and_curves(repo, learning_rate):
    if not (repo / MODEL).exists():
        assert stage(repo).returncode == 0
    model, curves = files(repo / MODEL), files(repo / CURVES)
    assert len(curves) > 10
    set_param(repo, "finetune.recipes.book.learning_rate", learning_rate)
    try:
        line = error_line(stage(repo))
    finally:
        set_param(repo, "finetune.recipes.book.learning_rate", 5.0e-5)
    assert "training loss became" in line or "no better than a random ranking" in line, line
    assert files(repo / MODEL) == model and files(repo / CURVES) == curves


# --- item 6: broken model files -----------------------------------------------------------------------------------


def broken_copies(repo: Path, dest: Path) -> dict[str, tuple[Path, str]]:
    """Broken copies of the base model: folder -> (the file the error must name, what it must say)."""
    cases = {}

    def copy(name: str) -> Path:
        shutil.copytree(repo / BASE, dest / name)
        return dest / name

    only_config = dest / "only-config"
    only_config.mkdir(parents=True)
    shutil.copy(repo / BASE / "config.json", only_config)
    cases["only-config"] = (only_config / "model.safetensors", "is missing")
    half = copy("half") / "model.safetensors"
    os.truncate(half, half.stat().st_size // 2)
    cases["half"] = (half, "is not a readable, complete safetensors file")
    loop = copy("loop") / "model.safetensors"
    loop.unlink()
    loop.symlink_to(loop.name)
    cases["loop"] = (loop, "Too many levels of symbolic links")
    bad_json = copy("bad-json") / "1_Pooling" / "config.json"
    bad_json.write_text('{"word_embedding_dimension": 384,')
    cases["bad-json"] = (bad_json, "is not valid JSON")
    modules = copy("bad-modules") / "modules.json"
    modules.write_text('{"0": "Transformer"}')
    cases["bad-modules"] = (modules, "is not a list of modules")
    return cases


def test_broken_model_folders_name_the_file(repo, tmp_path):
    check_model_folder(repo / BASE)  # the intact one passes
    for name, (file, cause) in broken_copies(repo, tmp_path).items():
        with pytest.raises(EmbedlabError) as err:
            resolve_model(str(tmp_path / name))
        problem = err.value.problem
        assert problem.startswith(f"{file} ") and cause in problem and "\n" not in problem, (name, problem)


def test_a_model_the_library_cannot_load_names_the_folder(repo, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(repo / BASE, folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(EmbedlabError) as err:
        load_sentence_transformer(str(folder))
    assert err.value.problem.startswith(f"{folder} could not be loaded as a model ("), err.value.problem
    assert "\n" not in err.value.problem


def test_a_stage_given_a_broken_model_exits_with_one_line(repo, tmp_path):
    cases = broken_copies(repo, tmp_path)
    for name in ("only-config", "half"):
        set_param(repo, "finetune.base_model", str(tmp_path / name))
        try:
            line = error_line(stage(repo))
        finally:
            set_param(repo, "finetune.base_model", str(BASE))
        assert line.startswith(f"error: {cases[name][0]} {cases[name][1]}"), line
