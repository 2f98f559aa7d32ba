"""Shared fixtures.

* ``data_dir``: the public data folder from ``$EMBEDLAB_DATA_DIR`` (``.ci/run`` sets it); tests that need it
  skip when it is absent, so a user without the data can still run the unit tests.
* ``tiny_repo``: this checkout's tracked files copied into a temporary git+DVC repo with the tiny profile,
  reproduced once per test session (``dvc repro``); tests that change params take ``repro_copy`` of it.
* ``lr_branch``: a copy of ``tiny_repo`` with branch ``lr`` (one learning rate changed) reproduced and committed,
  once per session: the what-reruns, metrics-diff and ``make exps`` tests all read this one run.
* ``run_dvc``: run a dvc command in a repo and return the completed process (checks the exit code).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub is unreachable in CI; fail fast instead of retrying
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Before torch loads OpenMP (here and in every subprocess): an idle OpenMP thread sleeps instead of spinning. With
# anything else running on the cores, spinning threads wait out the time slices of a descheduled partner; a tiny
# training took 12x longer beside one busy process (benchmarks/bench_threads.py), and the suite's first tiny
# pipeline 28 minutes instead of 5. On a quiet machine the same training is 1.6x slower (7.0 s -> 11.0 s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("EMBEDLAB_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("EMBEDLAB_DATA_DIR is not set to the public data folder")
    return Path(value)


def dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["PYTHONPATH"] = ""  # stages put their own checkout's src/ first; nothing else may shadow it
    # Test repos name their data folder in params.yaml (data.local_dir, a dvc.yaml dependency); under dvc repro a
    # different $EMBEDLAB_DATA_DIR is refused, so tests that point a stage elsewhere set it explicitly.
    env.pop("EMBEDLAB_DATA_DIR", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=kw.pop("env", dvc_env()), capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], repo, check=check)


def dvc_status(repo: Path) -> dict:
    """``dvc status --json`` parsed: {} means every stage is up to date."""
    return json.loads(run_dvc(repo, "status", "--json").stdout or "{}")


def changed_stages(repo: Path) -> set[str]:
    return set(dvc_status(repo))


def make_repo(dest: Path, profile: str | None = "tiny") -> Path:
    """Copy the tracked files of this checkout (plus uncommitted edits) into ``dest`` as a fresh git+DVC repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("metrics/", "plots/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if profile is not None:  # None keeps the default CPU profile (params.yaml)
        shutil.copy2(ROOT / "profiles" / f"{profile}.yaml", dest / "params.yaml")
    data = os.environ.get("EMBEDLAB_DATA_DIR")
    if data:  # the copy lives elsewhere: point data.local_dir (a dvc.yaml dependency) at the same folder
        set_param(dest, "data.local_dir", str(Path(data).resolve()))
    materialize_base_models(dest)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "tests@embedlab"], dest)
    run(["git", "config", "user.name", "embedlab tests"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


def materialize_base_models(repo: Path) -> None:
    """What stage ``base_models`` makes (``models/base/all-MiniLM-L6-v2``), so stage scripts also run by hand."""
    from embedlab.models import PACKAGED_ALIASES, materialize_base_model

    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    for name, spec in params["base_models"].items():
        if spec["hub"] in PACKAGED_ALIASES:  # offline, only the packaged model exists
            materialize_base_model(spec["hub"], spec["revision"], repo / "models" / "base" / name)


class DvcStyleDumper(yaml.SafeDumper):
    """PyYAML writing what DVC's round trip writes (block style, ``null`` as an empty value), so a file edited by a
    test stays a fixed point of ``dvc exp run -S``. Floats keep PyYAML's ``5.0e-05``: DVC would write ``5e-05``,
    which the YAML 1.1 rules of ``yaml.safe_load`` (used throughout the tests) read as a string."""


DvcStyleDumper.add_representer(type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", ""))


def set_param(repo: Path, key: str, value: object) -> None:
    """Set one value in ``repo/params.yaml`` in place, as DVC would write it: a scalar changes exactly its line; a
    mapping or list replaces the key's whole block (its deeper lines, and a list written at the key's indent)."""
    import re

    path = repo / "params.yaml"
    lines = path.read_text(encoding="utf-8").split("\n")
    parts, start, indent = key.split("."), 0, 0
    for depth, part in enumerate(parts):
        pattern = re.compile(rf"^{' ' * indent}{re.escape(part)}:(\s|$)")
        at = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), None)
        if at is None:
            raise KeyError(f"{key} not found in {path}")
        if depth == len(parts) - 1:
            child = re.compile(rf"^{' ' * indent}(\s|-(\s|$))")  # deeper, or a list item at the key's indent
            end = at + 1
            while end < len(lines) and child.match(lines[end]):
                end += 1
            block = yaml.dump({part: value}, Dumper=DvcStyleDumper, sort_keys=False, width=1000)
            lines[at:end] = [" " * indent + line for line in block.rstrip("\n").split("\n")]
        start, indent = at + 1, indent + 2
    path.write_text("\n".join(lines), encoding="utf-8")


def copy_with_data(src_repo: Path, dest_parent: Path) -> Path:
    """``src_repo`` (with its DVC cache) and the data folder beside it, as ``dest_parent/repo`` + ``shared/data``.

    ``data.local_dir`` is ``../shared/data`` as in the real layout, so each copy has a private data folder a test
    may corrupt, and dvc.lock's relative dependency paths stay valid.
    """
    dest = dest_parent / "repo"
    # not .dvc/tmp: DVC's lock, state database and background updater files, which may change while we copy
    skip_tmp = lambda folder, names: ["tmp"] if Path(folder).name == ".dvc" else []  # noqa: E731
    shutil.copytree(src_repo, dest, symlinks=True, ignore=skip_tmp)
    shutil.copytree(src_repo.parent / "shared", dest_parent / "shared")
    return dest


def repro_traced(repo: Path, *args: str, trace: Path | None = None) -> subprocess.CompletedProcess:
    """``dvc repro`` under the warm start (one import of the heavy libraries for all stages), optionally traced."""
    env = dvc_env()
    if trace is not None:
        env["EMBEDLAB_TRACE"] = str(trace)
    cmd = [sys.executable, "-m", "embedlab.warm", "run", "--", sys.executable, "-m", "dvc", "repro", *args]
    env["PYTHONPATH"] = str(repo / "src")  # the warm server imports embedlab from this copy
    return run(cmd, repo, env=env)


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory, data_dir) -> Path:
    """The whole pipeline reproduced once on the tiny profile (shared, do not modify: use repro_copy).

    Laid out as the real checkout: ``work/repo`` with ``work/shared/data`` (a copy of the public data) beside it;
    every stage is traced into ``work/trace`` (``embedlab.trace``) for tests/test_declared.py.
    """
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(data_dir, work / "shared" / "data", ignore=shutil.ignore_patterns("*.md"))
    repo = work / "repo"
    repo.mkdir()
    make_repo(repo)
    set_param(repo, "data.local_dir", "../shared/data")
    run(["git", "commit", "-qam", "data beside the repo"], repo)
    repro_traced(repo, trace=work / "trace")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "reproduced"], repo)
    return repo


@pytest.fixture
def repro_copy(tiny_repo, tmp_path) -> Iterator[Path]:
    """A private copy of the reproduced tiny repo (with its DVC cache and data folder) that a test may change.

    Removed after the test: each copy holds every model twice (workspace and cache), and pytest keeps a session's
    temporary folders until a later session, so twenty copies would take tens of GB of a 2-core CI machine's disk.
    """
    yield copy_with_data(tiny_repo, tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)


LR = "finetune.recipes.book.learning_rate"  # read by finetune@book only: one model retrained (tiny: seconds)


@dataclass(frozen=True)
class LrBranch:
    """``lr_branch``: the repo (on branch ``lr``), main's finetune-book headline, and the stages the change ran."""

    repo: Path
    main_headline: dict
    ran: list[str]


@pytest.fixture(scope="session")
def lr_branch(tiny_repo, tmp_path_factory) -> LrBranch:
    """A copy of the reproduced tiny pipeline with branch ``lr`` (LR 3e-5) reproduced and committed (shared, do
    not modify: take ``copy_with_data(lr_branch.repo, ...)``). Main's finetune-book headline is kept: metrics live
    in the DVC cache, not in git."""
    repo = copy_with_data(tiny_repo, tmp_path_factory.mktemp("lr"))
    main_headline = json.loads((repo / "metrics" / "finetune-book.json").read_text())
    run(["git", "checkout", "-qb", "lr"], repo)
    set_param(repo, LR, 3.0e-5)
    ran = sorted(re.findall(r"Running stage '([^']+)'", repro_traced(repo).stdout))
    run(["git", "commit", "-qam", "lr 3e-5"], repo)
    return LrBranch(repo, main_headline, ran)
