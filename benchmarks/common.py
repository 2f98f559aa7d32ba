"""Shared benchmark helpers: interleaved repeats, medians, machine description, result files.

The CPU is shared and noisy, so every benchmark runs the baseline and our variants side by side, interleaved
(A B C, A B C, ...), at least 3 times each, and reports medians and ratios of medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def interleaved(runs: dict[str, Callable[[], Any]], repeats: int = 3) -> dict[str, list[float]]:
    """Wall seconds of each callable, ``repeats`` rounds, one call of each per round (noise hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            print(f"  round {r + 1}/{repeats} {name}: {times[name][-1]:.2f}s", flush=True)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> str:
    """CPU model, logical cores and torch version: what a reader needs to compare numbers."""
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def save(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """benchmarks/results/<name>.json: the table rows plus raw timings, machine and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rows": rows,
        **extra,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(ROOT)}")
    return path
