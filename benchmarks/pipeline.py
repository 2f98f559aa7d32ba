"""Whole pipeline: wall time per stage of one `dvc repro`, a no-op `dvc repro` (median of 3), Python start-up.

By default it runs in a fresh ``git clone`` of this repository (committed code only) in a temporary folder, with
its own empty DVC cache and ``../shared`` linked to the data folder, exactly like a new checkout:

    python benchmarks/pipeline.py                      # CPU profile (params.yaml as committed)
    python benchmarks/pipeline.py --profile tiny       # cp profiles/tiny.yaml params.yaml first
    python benchmarks/pipeline.py --repo /path/to/repo # an existing checkout, as it is

Per-stage times come from one streamed `dvc repro`: a stage lasts from its "Running stage" line to the next one
(or the end), so DVC's own hashing and caching between stages is counted in the stage before it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, median, save

STAGE_LINE = re.compile(r"^(?:Running|Stage) stage '([^']+)'")


def dvc_env(data_dir: Path | None) -> dict[str, str]:
    # unbuffered: the "Running stage" lines must arrive when printed, they are the clock
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", PYTHONPATH="", PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if data_dir is not None:
        env["EMBEDLAB_DATA_DIR"] = str(data_dir)
    return env


def fresh_clone(source: Path, data_dir: Path) -> tuple[Path, Path]:
    """``git clone`` of ``source`` beside a ``shared`` link to the data's parent (/work/shared layout)."""
    top = Path(tempfile.mkdtemp(prefix="embedlab-pipeline-"))
    repo = top / "repo"
    subprocess.run(["git", "clone", "--quiet", str(source), str(repo)], check=True)
    (top / "shared").symlink_to(data_dir.parent.resolve())
    return repo, top / "shared" / data_dir.name


def repro_command(*, warm: bool, force: bool) -> list[str]:
    """`dvc repro` as `make repro` runs it: under the warm fork server (embedlab.warm) unless ``warm`` is off."""
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    return [sys.executable, "-m", "embedlab.warm", "run", "--", *cmd] if warm else cmd


def repro_timed(
    repo: Path, env: dict[str, str], log: Path, cmd: list[str]
) -> tuple[list[tuple[str, float]], float, int]:
    """Run `dvc repro` (``cmd``), streaming its output; (stage, seconds) in run order, total seconds, exit code."""
    stages: list[tuple[str, float]] = []
    start = time.perf_counter()
    current, since = None, start
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            m = STAGE_LINE.match(line.strip())
            if m:
                now = time.perf_counter()
                if current is not None:
                    stages.append((current, now - since))
                current, since = m.group(1), now
        rc = proc.wait()
    end = time.perf_counter()
    if current is not None:
        stages.append((current, end - since))
    return stages, end - start, rc


def seconds_of(cmd: list[str], cwd: Path, env: dict[str, str], repeats: int = 3) -> float:
    """Median wall seconds of a command (its exit code is ignored: a usage error is a fine no-op)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return median(times)


def startup_costs(repo: Path, env: dict[str, str]) -> dict[str, float]:
    """What every stage pays before working: the interpreter, params validation, torch, sentence-transformers."""
    py = sys.executable
    return {
        "python -c pass": seconds_of([py, "-c", "pass"], repo, env),
        "import embedlab.params (params check)": seconds_of(
            [py, "-c", "import sys; sys.path.insert(0, 'src'); import embedlab.params"], repo, env
        ),
        "import torch": seconds_of([py, "-c", "import torch"], repo, env),
        "import sentence_transformers": seconds_of([py, "-c", "import sentence_transformers"], repo, env),
        "stages/evaluate.py (usage error, no work)": seconds_of([py, "stages/evaluate.py"], repo, env),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, help="existing checkout to run in (default: a fresh clone of this repo)")
    ap.add_argument("--profile", help="copy profiles/<name>.yaml over params.yaml first (e.g. tiny)")
    env_dir = os.environ.get("EMBEDLAB_DATA_DIR")
    ap.add_argument(
        "--data-dir", type=Path, default=Path(env_dir) if env_dir else None, help="default: $EMBEDLAB_DATA_DIR"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone")
    ap.add_argument("--no-warm", action="store_true", help="plain `dvc repro`, every stage pays its own imports")
    ap.add_argument("--force", action="store_true", help="`dvc repro --force`: rerun every stage (for --repo)")
    args = ap.parse_args()

    if args.data_dir is None:
        ap.error("no data folder: pass --data-dir or export EMBEDLAB_DATA_DIR (README, Data)")
    data_dir = args.data_dir
    if args.repo is None:
        repo, data_dir = fresh_clone(ROOT, args.data_dir)
        print(f"fresh clone: {repo} (EMBEDLAB_DATA_DIR={data_dir})")
    else:
        repo = args.repo.resolve()
    if args.profile:
        shutil.copyfile(repo / "profiles" / f"{args.profile}.yaml", repo / "params.yaml")
    env = dvc_env(data_dir)
    log = Path(tempfile.mkstemp(prefix="dvc-repro-", suffix=".log")[1])
    cmd = repro_command(warm=not args.no_warm, force=args.force)
    print("running:", " ".join(cmd[1:]), flush=True)
    stages, total, rc = repro_timed(repo, env, log, cmd)
    if rc != 0:
        print(log.read_text(encoding="utf-8")[-4000:])
        raise SystemExit(f"dvc repro failed ({rc}); full log: {log}")
    noop = [seconds_of([sys.executable, "-m", "dvc", "repro"], repo, env, repeats=1) for _ in range(3)]
    startup = startup_costs(repo, env)

    print("\n| stage | seconds | share |\n|---|---|---|")
    for name, sec in sorted(stages, key=lambda s: -s[1]):
        print(f"| {name} | {sec:.1f} | {sec / total:.1%} |")
    print(f"| **total ({len(stages)} stages)** | **{total:.1f}** | |")
    print(f"\nno-op dvc repro: median {median(noop):.1f}s of {[round(x, 1) for x in noop]}")
    for k, v in startup.items():
        print(f"start-up: {k}: {v:.2f}s")
    per_stage = startup["import sentence_transformers"]  # what every stage that loads a model pays first
    print(f"import sentence_transformers x stages ~ {per_stage * len(stages):.0f}s of {total:.0f}s total")
    rows = [{"stage": n, "seconds": round(s, 2)} for n, s in stages]
    save(
        f"pipeline-{args.profile or 'params'}",
        rows,
        total_s=round(total, 1),
        noop_s=[round(x, 2) for x in noop],
        noop_median_s=round(median(noop), 2),
        startup_s={k: round(v, 3) for k, v in startup.items()},
        repo=str(repo),
        command=" ".join(["python", *cmd[1:]]),
        warm=not args.no_warm,
        log=str(log),
    )
    if args.repo is None and not args.keep:
        shutil.rmtree(repo.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
