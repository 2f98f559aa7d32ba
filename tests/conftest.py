"""Shared fixtures.

* ``data_dir``: the public data folder from ``$EMBEDLAB_DATA_DIR`` (``.ci/run`` sets it); tests that need it
  skip when it is absent, so a user without the data can still run the unit tests.
* ``tiny_repo``: this checkout's tracked files copied into a temporary git+DVC repo with the tiny profile,
  reproduced once per test session (``dvc repro``); tests that change params take ``repro_copy`` of it.
* ``run_dvc``: run a dvc command in a repo and return the completed process (checks the exit code).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub is unreachable in CI; fail fast instead of retrying
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
        if src.is_file() and not rel.startswith(("metrics/", "dvc.lock")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if profile is not None:  # None keeps the default CPU profile (params.yaml)
        shutil.copy2(ROOT / "profiles" / f"{profile}.yaml", dest / "params.yaml")
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "tests@embedlab"], dest)
    run(["git", "config", "user.name", "embedlab tests"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory, data_dir) -> Path:
    """The whole pipeline reproduced once on the tiny profile (shared, do not modify: use repro_copy)."""
    repo = make_repo(tmp_path_factory.mktemp("tiny_repo"))
    run_dvc(repo, "repro")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "reproduced"], repo)
    return repo


@pytest.fixture
def repro_copy(tiny_repo, tmp_path) -> Path:
    """A private copy of the reproduced tiny repo (with its DVC cache) that a test may change."""
    dest = tmp_path / "repo"
    shutil.copytree(tiny_repo, dest, symlinks=True)
    return dest
