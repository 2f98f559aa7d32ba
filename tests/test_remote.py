"""Sharing a reproduced pipeline: DVC remotes (a local folder and a real SSH server) with the run-cache.

Repo A is the session's reproduced tiny pipeline (``tiny_repo``, committed with dvc.lock and metrics). It pushes
data and run-cache to both remotes; fresh clones pull and must find every stage cached; then A runs an
uncommitted param change and pushes only its run-cache, and a clone making the same change gets that stage's
outputs from the run-cache. "Nothing ran" is proven, not read from DVC's wording: a ``sitecustomize`` on
``PYTHONPATH`` logs every ``stages/*.py`` that Python starts, and that log must stay empty; outputs' bytes, mtimes
and dvc.lock must not change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import changed_stages, dvc_env, dvc_status, run
from sshd import SshServer, sshd_available, start_sshd, stop_sshd_proc

pytestmark = pytest.mark.slow

TRAP = """import os, sys
if sys.argv and "stages" in sys.argv[0].replace(os.sep, "/").split("/")[:-1]:
    with open(os.environ["EMBEDLAB_STAGE_LOG"], "a", encoding="utf-8") as f:
        f.write(" ".join(sys.argv) + "\\n")
"""


@pytest.fixture
def stage_log(tmp_path) -> tuple[dict[str, str], Path]:
    """An environment in which every ``python stages/<x>.py`` leaves a line in the returned log file."""
    trap = tmp_path / "trap"
    trap.mkdir()
    (trap / "sitecustomize.py").write_text(TRAP)
    log = tmp_path / "stages_run.log"
    env = dvc_env()
    env["PYTHONPATH"] = str(trap)
    env["EMBEDLAB_STAGE_LOG"] = str(log)
    return env, log


@pytest.fixture
def ssh_server(tmp_path):
    if not sshd_available():
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server; .ci/run does)")
    server = start_sshd(tmp_path / "sshd")
    yield server
    stop_sshd_proc(server.proc)


def dvc(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], repo, env=env or dvc_env())


def stage_outputs(repo: Path) -> dict[str, tuple[int, str]]:
    """Every file of every output in dvc.lock: path -> (mtime_ns, sha256)."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    files = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            root = repo / out["path"]
            for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
                if path.is_file():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    files[str(path.relative_to(repo))] = (path.stat().st_mtime_ns, digest)
    return files


def add_remotes(repo: Path, store: Path, server: SshServer) -> None:
    """The team set-up: remote URLs in .dvc/config (committed), credentials in .dvc/config.local (not)."""
    dvc(repo, "remote", "add", "-d", "shared", str(store))
    dvc(repo, "remote", "add", "ssh", server.url(server.root / "dvcstore"))
    dvc(repo, "remote", "modify", "--local", "ssh", "keyfile", str(server.keyfile))
    run(["git", "add", ".dvc/config"], repo)
    run(["git", "commit", "-qm", "remotes"], repo)
    assert "keyfile" not in (repo / ".dvc" / "config").read_text()
    assert "keyfile" in (repo / ".dvc" / "config.local").read_text()


def change_comparisons(repo: Path) -> None:
    """A cheap 'experiment': drop the last report comparison (re-runs only the report stage)."""
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["report"]["comparisons"] = params["report"]["comparisons"][:-1]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_clone_pulls_every_stage_from_local_and_ssh_remotes(repro_copy, tmp_path, ssh_server, stage_log):
    repo_a = repro_copy
    assert dvc_status(repo_a) == {}, "the reproduced repo A must be up to date"
    a_outputs = stage_outputs(repo_a)
    assert any(p.startswith("models/") for p in a_outputs), "the tiny pipeline trains models"
    add_remotes(repo_a, tmp_path / "store", ssh_server)
    dvc(repo_a, "push", "--run-cache", "-r", "shared")
    dvc(repo_a, "push", "--run-cache", "-r", "ssh")
    assert any((ssh_server.root / "dvcstore" / "files" / "md5").rglob("*")), "nothing reached the SSH server"
    assert any((ssh_server.root / "dvcstore" / "runs").rglob("*")), "no run-cache on the SSH server"
    hashes = {p: h for p, (_, h) in a_outputs.items()}
    env, log = stage_log

    # B1: clone + `dvc pull --run-cache` from the default remote (a local folder), then `dvc repro`.
    repo_b1 = tmp_path / "b1"
    run(["git", "clone", "-q", str(repo_a), str(repo_b1)], tmp_path)
    dvc(repo_b1, "config", "--local", "cache.type", "hardlink,symlink")  # ~1 GB of models: link, don't copy
    dvc(repo_b1, "pull", "--run-cache", env=env)
    assert dvc_status(repo_b1) == {}
    pulled = stage_outputs(repo_b1)
    assert {p: h for p, (_, h) in pulled.items()} == hashes
    dvc(repo_b1, "repro", env=env)
    assert stage_outputs(repo_b1) == pulled, "repro rewrote outputs"
    assert run(["git", "status", "--porcelain"], repo_b1).stdout == ""

    # B2: clone with the SSH server as its (local-config) default remote: `dvc repro --pull` fetches everything.
    repo_b2 = tmp_path / "b2"
    run(["git", "clone", "-q", str(repo_a), str(repo_b2)], tmp_path)
    dvc(repo_b2, "remote", "modify", "--local", "ssh", "keyfile", str(ssh_server.keyfile))
    dvc(repo_b2, "remote", "default", "--local", "ssh")
    dvc(repo_b2, "config", "--local", "cache.type", "hardlink,symlink")
    dvc(repo_b2, "repro", "--pull", env=env)
    assert dvc_status(repo_b2) == {}
    assert {p: h for p, (_, h) in stage_outputs(repo_b2).items()} == hashes
    assert run(["git", "status", "--porcelain"], repo_b2).stdout == ""
    ran = log.read_text() if log.exists() else ""
    assert ran == "", f"stages ran instead of coming from the remote:\n{ran}"

    # The run-cache proper: A runs a param change it never commits and pushes only the run-cache; B2 makes
    # the same change and gets the stage's outputs from the run-cache instead of running it.
    change_comparisons(repo_a)
    assert changed_stages(repo_a) == {"report"}
    dvc(repo_a, "repro")
    a_report = (repo_a / "reports" / "results.md").read_text()
    dvc(repo_a, "push", "--run-cache", "-r", "ssh")
    change_comparisons(repo_b2)
    assert changed_stages(repo_b2) == {"report"}
    dvc(repo_b2, "pull", "--run-cache", env=env)
    dvc(repo_b2, "repro", "--pull", env=env)
    ran = log.read_text() if log.exists() else ""
    assert ran == "", f"the changed stage ran instead of coming from the run-cache:\n{ran}"
    assert dvc_status(repo_b2) == {}
    assert (repo_b2 / "reports" / "results.md").read_text() == a_report
    assert (repo_b2 / "dvc.lock").read_text() == (repo_a / "dvc.lock").read_text()


def test_stage_log_trap_sees_a_stage_that_runs(repro_copy, stage_log):
    """The trap above must be able to fail: a forced re-run of one stage shows up in the log."""
    env, log = stage_log
    before = (repro_copy / "reports" / "results.md").read_text()
    dvc(repro_copy, "repro", "--force", "--single-item", "report", env=env)
    assert log.read_text().split() == ["stages/report.py"]
    assert (repro_copy / "reports" / "results.md").read_text() == before  # seeded: the same report again


def test_ssh_credentials_stay_out_of_git(tmp_path, ssh_server):
    """`dvc remote modify --local` writes .dvc/config.local, which DVC's own .gitignore keeps out of git."""
    from conftest import make_repo

    repo = make_repo(tmp_path / "repo")
    add_remotes(repo, tmp_path / "store", ssh_server)
    tracked = run(["git", "ls-files"], repo).stdout.split()
    assert ".dvc/config" in tracked and ".dvc/config.local" not in tracked
    ignored = run(["git", "check-ignore", ".dvc/config.local"], repo, check=False)
    assert ignored.returncode == 0
    assert os.stat(ssh_server.keyfile).st_mode & 0o077 == 0, "ssh-keygen writes private keys 0600"
