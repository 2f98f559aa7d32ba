"""Install time from the lock file: pip (baseline) vs uv, each into a fresh venv, side by side.

python benchmarks/bench_install.py                     # requirements/cpu.txt, cold and warm cache, 3 rounds
python benchmarks/bench_install.py --mode cold --rounds 5 --json /tmp/install.json

What is timed is what `make install` does after creating the venv: install every locked package (hashes checked,
no resolution) and then embedlab itself, editable, without dependencies.

- pip: ``pip --python VENV install --require-hashes --no-deps -r LOCK`` with this machine's pip configuration
  (find-links, extra indexes), then ``pip install --no-deps --no-build-isolation -e .``. The pip that runs is the
  one of the interpreter running this script (a current pip), not the fresh venv's bundled one.
- uv: ``uv pip sync --compile-bytecode --require-hashes --find-links WHEELS LOCK``, then ``uv pip install
  --no-deps --no-build-isolation -e .`` (exactly the Makefile's ``install``; pip also compiles .pyc by default).

``cold``: a new, empty download cache for every install (a fresh CI machine); ``warm``: a cache that one untimed
install has filled (a developer re-creating the venv). Venv creation is not timed. Rounds are interleaved (pip,
uv, uv, pip, ...) so network and CPU noise hit both alike; medians, and the ratio uv / pip (< 1: uv faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UV = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
WHEELS = (
    "/opt/wheels" if list(Path("/opt/wheels").glob("torch-*+cpu-*.whl")) else "https://download.pytorch.org/whl/torch/"
)


def run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")


def fresh_venv(where: Path) -> Path:
    if where.exists():
        shutil.rmtree(where)
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    return where / "bin" / "python"


def install_pip(python: Path, lock: Path, cache: Path) -> None:
    env = {**os.environ, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], env)
    run([*pip, "--no-deps", "--no-build-isolation", "-e", "."], env)


def install_uv(python: Path, lock: Path, cache: Path) -> None:
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    uv = [UV, "pip"]
    sync = [*uv, "sync", "--quiet", "--compile-bytecode", "--python", str(python), "--require-hashes"]
    run([*sync, "--find-links", WHEELS, str(lock)], env)
    run([*uv, "install", "--quiet", "--python", str(python), "--no-deps", "--no-build-isolation", "-e", "."], env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", default="requirements/cpu.txt")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", choices=["cold", "warm", "both"], default="both")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if UV is None:
        sys.exit("uv not found: `make install` puts it in the venv")
    lock = (ROOT / args.lock).resolve()
    tools = {"pip": install_pip, "uv": install_uv}
    modes = ["cold", "warm"] if args.mode == "both" else [args.mode]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_install_") as tmp:
        tmp_path = Path(tmp)
        warm_cache = {name: tmp_path / f"cache-warm-{name}" for name in tools}
        if "warm" in modes:
            for name, install in tools.items():  # fill each tool's cache once, untimed
                print(f"filling the {name} cache (untimed)", flush=True)
                install(fresh_venv(tmp_path / "venv"), lock, warm_cache[name])
        for mode in modes:
            times: dict[str, list[float]] = {name: [] for name in tools}
            for r in range(args.rounds):
                order = list(tools) if r % 2 == 0 else list(reversed(tools))
                for name in order:
                    python = fresh_venv(tmp_path / "venv")
                    cache = warm_cache[name] if mode == "warm" else tmp_path / f"cache-cold-{name}-{r}"
                    start = time.perf_counter()
                    tools[name](python, lock, cache)
                    times[name].append(time.perf_counter() - start)
                    print(f"  {mode} round {r + 1}/{args.rounds} {name}: {times[name][-1]:.1f}s", flush=True)
                    if mode == "cold":
                        shutil.rmtree(cache, ignore_errors=True)
            results[mode] = times

    uv_version = subprocess.run([UV, "--version"], capture_output=True, text=True).stdout.strip()
    pip_version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True).stdout
    print(f"\nlock {args.lock}, {os.cpu_count()} CPUs, {pip_version.split(' from ')[0]}, {uv_version}")
    print(f"{'cache':<6} {'pip median (s)':>15} {'uv median (s)':>14} {'uv / pip':>9} {'speed-up':>9}  runs pip | uv")
    rows = []
    for mode, times in results.items():
        p, u = statistics.median(times["pip"]), statistics.median(times["uv"])
        rows.append(
            {
                "cache": mode,
                "pip_median_s": round(p, 2),
                "uv_median_s": round(u, 2),
                "ratio_uv_over_pip": round(u / p, 3),
                "speedup": round(p / u, 2),
                "pip_s": [round(t, 2) for t in times["pip"]],
                "uv_s": [round(t, 2) for t in times["uv"]],
            }
        )
        runs = f"{' '.join(f'{t:.1f}' for t in times['pip'])} | {' '.join(f'{t:.1f}' for t in times['uv'])}"
        print(f"{mode:<6} {p:>15.1f} {u:>14.1f} {u / p:>9.2f} {p / u:>8.1f}x  {runs}")
    if args.json:
        Path(args.json).write_text(json.dumps({"lock": args.lock, "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
