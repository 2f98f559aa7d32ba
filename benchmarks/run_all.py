"""Run every benchmark (baseline and ours interleaved, medians of >= 3) and rewrite the table in README.md.

python benchmarks/run_all.py                # silver labelling, training, export (tens of minutes on 2 cores)
python benchmarks/run_all.py --pipeline     # + the whole CPU-profile pipeline in a fresh clone (long)
python benchmarks/run_all.py --render-only  # only rebuild the table from benchmarks/results/*.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _when(r: dict) -> tuple[str, str]:
    return r["machine"].split(",")[0] + f" ({r['machine'].split(', ')[1]})", r["date"]


def table() -> str:
    """The results table: benchmark, baseline, ours, ratio, quality check, machine, date."""
    lines = [
        "| benchmark | baseline (book's code path) | ours | ratio | quality check | machine | date |",
        "|---|---|---|---|---|---|---|",
    ]
    if r := _load("silver_label"):
        machine, date = _when(r)
        rows = {x["path"]: x for x in r["rows"]}
        book = rows.pop("book (torch predict, batch 32)")
        for name, x in rows.items():
            quality = ""
            if "hard_agreement" in x:
                ok = x["hard_agreement"] >= 0.99 and x["max_abs_diff"] <= 0.02
                quality = (
                    f"hard labels agree {x['hard_agreement']:.2%}, max abs diff {x['max_abs_diff']:.4f} "
                    f"(p99 {x['p99_abs_diff']:.4f}) {'✅' if ok else '❌'}; with export {x['ratio_with_export']}x"
                )
                if "agreement_at_median" in x:
                    quality += f"; labels at the median score agree {x['agreement_at_median']:.2%}"
            lines.append(
                f"| silver_label, {r['pairs']} pairs | {book['pairs_per_s']} pairs/s | {name}: "
                f"{x['pairs_per_s']} pairs/s | **{x['ratio']}x** | {quality} | {machine} | {date} |"
            )
    if r := _load("training"):
        machine, date = _when(r)
        rows = {x["path"]: x for x in r["rows"]}
        for kind in sorted({p.split("/")[0] for p in rows}):
            b, o = rows[f"{kind}/book"], rows[f"{kind}/ours"]
            lines.append(
                f"| {kind} training, {r['steps']} steps x {r['batch_size']} | {b['pairs_per_s']} pairs/s | "
                f"group_by_length: {o['pairs_per_s']} pairs/s | **{o['ratio']}x** | STS-B val Spearman "
                f"{b['spearman_cosine']:.4f} -> {o['spearman_cosine']:.4f} ({o['spearman_delta']:+.4f}) "
                f"{'✅' if abs(o['spearman_delta']) <= 0.003 else '❌'} | "
                f"{machine} | {date} |"
            )
    if r := _load("export"):
        machine, date = _when(r)
        rows = {x["path"]: x for x in r["rows"]}
        t = rows.pop("torch")
        for name, x in rows.items():
            lines.append(
                f"| export ({r['model']}), {r['sentences']} sentences | torch {t['sentences_per_s']:.0f} sent/s | "
                f"{name}: {x['sentences_per_s']:.0f} sent/s | **{x['speedup']:.2f}x** | STS-B val Spearman "
                f"{t['spearman_cosine']:.4f} -> {x['spearman_cosine']:.4f} ({x['relative_spearman']:.2%}) "
                f"{'✅' if x['relative_spearman'] >= 0.99 else '❌'} | "
                f"{machine} | {date} |"
            )
    if r := _load("threads"):
        machine, date = _when(r)
        for x in r["rows"]:
            if x["setting"] != "default":
                base = next(b for b in r["rows"] if b["condition"] == x["condition"] and b["setting"] == "default")
                lines.append(
                    f"| OpenMP waiting, {r['steps']} training steps x {r['batch_size']}, {x['condition']} | "
                    f"default threads {base['median_s']:.2f}s | {x['setting']}: {x['median_s']:.2f}s | "
                    f"**{base['median_s'] / x['median_s']:.2f}x** | "
                    f"{'same threads, only how they wait' if x['setting'] == 'passive' else ''} | {machine} | {date} |"
                )
    for profile in ("params", "tiny"):
        if r := _load(f"pipeline-{profile}"):
            machine, date = _when(r)
            slowest = max(r["rows"], key=lambda x: x["seconds"])
            command = re.sub(r"\S*/python3?", "python", r.get("command", "dvc repro"))
            lines.append(
                f"| pipeline `{command}` "
                f"({'CPU' if profile == 'params' else profile} profile, "
                f"{'fresh clone' if 'embedlab-pipeline-' in r.get('repo', '') else 'workspace'}) | | "
                f"{len(r['rows'])} stages in {r['total_s']:.0f}s (slowest {slowest['stage']} "
                f"{slowest['seconds']:.0f}s); no-op repro {r['noop_median_s']}s | | | {machine} | {date} |"
            )
            startup = "; ".join(f"{k} {v:.2f}s" for k, v in r["startup_s"].items())
            lines.append(f"| Python start-up per stage | | {startup} | | | {machine} | {date} |")
    return "\n".join(lines)


def render() -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table()}\n{END}{tail}", encoding="utf-8")
    print(f"updated {README}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", action="store_true", help="also time the CPU-profile pipeline (fresh clone)")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if not args.render_only:
        scripts = [["bench_silver_label.py"], ["bench_training.py"], ["bench_export.py"], ["bench_threads.py"]]
        if args.pipeline:
            scripts.append(["pipeline.py"])
        for cmd in scripts:
            print(f"== {' '.join(cmd)}", flush=True)
            subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], check=True)
    render()


if __name__ == "__main__":
    main()
