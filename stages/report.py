"""Stage `report`: reports/results.md (+ PNG, dvc plots data, paired tests) from every metrics/*.json.

Evaluated models are read from metrics/details/<name>.json (the book's keys; metrics/<name>.json is the headline).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    from embedlab.report import write_report

    boot = p.evaluate.bootstrap
    out = write_report(
        "metrics",
        "data/eval_scores",
        "reports",
        sets=list(p.evaluate.sets),
        comparisons=[c.model_dump() for c in p.report.comparisons],
        resamples=boot.resamples,
        seed=boot.seed,
        order=list(p.evaluate.models),
    )
    models = sorted({r["model"] for r in out["rows"]})
    print(f"report: {len(models)} evaluated models -> reports/results.md, reports/results.png")
    for c in out["comparisons"]:
        if c["status"] == "ok":
            verdict = "holds" if c["holds"] else "within noise"
            print(f"  {c['name']} [{c['set']}]: delta {c['delta']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] {verdict}")
        else:
            print(f"  {c['name']}: {c['status']}")


if __name__ == "__main__":
    run_stage(main)
