"""OpenMP waiting on a busy machine: training time with torch's default (spinning) threads vs sleeping ones.

python benchmarks/bench_threads.py                  # 16 steps, 3 rounds, quiet and beside a one-thread job
python benchmarks/bench_threads.py --steps 32 --rounds 5

The same small training (all-MiniLM-L6-v2, MultipleNegativesRankingLoss, batch 16, STS-B validation pairs, the
size of a tiny-profile stage) runs in a fresh interpreter per measurement, under three settings:

- ``default``: OpenMP's defaults, one thread per core (the baseline: what ``python stages/...`` gets);
- ``passive``: the same threads with ``OMP_WAIT_POLICY=PASSIVE`` (an idle thread sleeps instead of spinning);
- ``1 thread``: ``OMP_NUM_THREADS=1``.

each ``quiet`` (nothing else running) and ``loaded`` (beside a one-thread training job, the same training in a
loop). Only the ``trainer.train()`` call is timed. Rounds are interleaved; medians, and the ratio to ``default``
in the same condition (> 1: slower). Why it matters: with a spinning thread waiting for one the kernel has
descheduled for another process, every parallel region waits out a time slice; ``tests/conftest.py`` sets
``OMP_WAIT_POLICY=PASSIVE`` for the suite from this measurement.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from common import ROOT, median, save

TRAIN = """
import sys, time
import pandas as pd
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
model_dir, pairs, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
df = pd.read_parquet(pairs).head(16 * steps)
data = Dataset.from_dict({"anchor": df.sentence1.tolist(), "positive": df.sentence2.tolist()})
while True:
    model = SentenceTransformer(model_dir, device="cpu")
    args = SentenceTransformerTrainingArguments(output_dir=out, per_device_train_batch_size=16, max_steps=steps,
        save_strategy="no", report_to=[], disable_tqdm=True, seed=42)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
        loss=MultipleNegativesRankingLoss(model))
    start = time.perf_counter()
    trainer.train()
    print(f"train_s={time.perf_counter() - start:.3f}", flush=True)
    if len(sys.argv) < 6:  # "loop": the background job
        break
"""

SETTINGS = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}


def environment(extra: dict[str, str]) -> dict[str, str]:
    """This environment (offline, as ``common`` sets it) without any OpenMP setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    return {**env, **extra}


def train_seconds(cmd: list[str], extra: dict[str, str]) -> float:
    """Seconds of ``trainer.train()`` as the child measured it (interpreter start and model loading excluded)."""
    out = subprocess.run(cmd, env=environment(extra), capture_output=True, text=True, check=True).stdout
    return float(re.findall(r"train_s=([\d.]+)", out)[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=str(ROOT / "models/base/all-MiniLM-L6-v2"))
    ap.add_argument("--pairs", default=str(ROOT / "data/eval/stsb_validation.parquet"))
    args = ap.parse_args()
    for path in (args.model, args.pairs):
        if not Path(path).exists():
            sys.exit(f"{path} does not exist: run `dvc pull` (or `make repro`) first, or pass --model/--pairs")
    cmd = [sys.executable, "-c", TRAIN, args.model, args.pairs, str(args.steps), "/tmp/bench_threads"]

    rows, raw = [], {}
    for condition in ("quiet", "loaded"):
        load = None
        if condition == "loaded":  # a one-thread training job, started fresh and warmed up before timing
            load = subprocess.Popen(
                [*cmd, "loop"],
                env=environment({"OMP_NUM_THREADS": "1"}),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            assert load.stdout is not None
            load.stdout.readline()  # its first training has finished: the load is running
        try:
            print(f"== {condition}", flush=True)
            times: dict[str, list[float]] = {name: [] for name in SETTINGS}
            for r in range(args.rounds):  # interleaved, as common.interleaved, but the child's own clock
                for name, extra in SETTINGS.items():
                    times[name].append(train_seconds(cmd, extra))
                    print(f"  round {r + 1}/{args.rounds} {name}: {times[name][-1]:.2f}s", flush=True)
        finally:
            if load is not None:
                os.killpg(load.pid, signal.SIGKILL)
                load.wait()
        base = median(times["default"])
        for name, values in times.items():
            rows.append(
                {
                    "condition": condition,
                    "setting": name,
                    "median_s": round(median(values), 2),
                    "ratio_to_default": round(median(values) / base, 3),
                }
            )
        raw[condition] = times
    print(f"\n{'condition':<9} {'setting':<9} {'median train s':>15} {'/ default':>10}")
    for r in rows:
        print(f"{r['condition']:<9} {r['setting']:<9} {r['median_s']:>15.2f} {r['ratio_to_default']:>9.3f}x")
    save("threads", rows, steps=args.steps, batch_size=16, rounds=args.rounds, raw_seconds=raw)


if __name__ == "__main__":
    main()
