"""Stage `evaluate@<name>`: the book's STS metrics of one model (with bootstrap CIs), as a headline and in full.

metrics/<name>.json (the DVC metric) holds only what people compare: per evaluation set, Spearman cosine and its
95 % bootstrap interval, so `dvc metrics show/diff` stays a few columns per model. The book's ten keys per set and
the CIs as the evaluator returns them go to metrics/details/<name>.json (a plain output, read by the report).

The versions of torch, transformers, sentence-transformers, datasets and dvc that computed them go beside, to
metrics/env/<name>.json (a plain output, so `dvc metrics show` stays numbers only).

Each pair's cosine score goes to data/eval_scores/<name>.parquet, for the report's paired bootstrap tests.
"""

import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params

DIGITS = 6  # 1e-6: far below any CI's width, yet float noise in the last bits never shows up as a change


def headline(metrics: dict[str, Any], sets: list[str]) -> dict[str, dict[str, float]]:
    """``{set: {"spearman_cosine": x, "ci95_low": lo, "ci95_high": hi}}``: the numbers compared across runs."""
    from embedlab.evaluation import HEADLINE_SET
    from embedlab.stats import CI_KEY, CI_METRIC

    out = {}
    for eval_set in sets:
        values = metrics if eval_set == HEADLINE_SET else metrics[eval_set]
        row = {CI_METRIC: round(values[CI_METRIC], DIGITS)}
        ci = metrics.get(CI_KEY, {}).get(eval_set, {}).get(CI_METRIC, {})
        for bound in ("low", "high"):
            if isinstance(ci.get(bound), float) and math.isfinite(ci[bound]):  # NaN: no interval, not a number
                row[f"ci95_{bound}"] = round(ci[bound], DIGITS)
        out[eval_set] = row
    return out


def main() -> None:
    p = load_params()
    if len(sys.argv) != 2 or sys.argv[1] not in p.evaluate.models:
        raise ParamsError(
            f"usage: evaluate.py NAME with NAME one of {sorted(p.evaluate.models)}",
            "add the model under evaluate.models in params.yaml",
        )
    name = sys.argv[1]
    from embedlab.environment import library_versions
    from embedlab.evaluation import evaluate_model_with_scores
    from embedlab.io import atomic_path, read_parquet, write_json, write_parquet
    from embedlab.models import load_sentence_transformer, resolve_model
    from embedlab.stats import CI_KEY, intervals

    spec = p.evaluate.models[name]
    resolve_model(spec.model)  # fail on a bad name before reading data or importing torch
    sets = {
        s: read_parquet(Path("data/eval") / f"{s}.parquet", ["sentence1", "sentence2", "score"])
        for s in p.evaluate.sets
    }
    model = load_sentence_transformer(spec.model)
    boot = p.evaluate.bootstrap
    metrics, pair_scores = evaluate_model_with_scores(model, sets, batch_size=p.evaluate.batch_size)
    metrics[CI_KEY] = intervals(pair_scores, resamples=boot.resamples, seed=boot.seed)
    write_parquet(Path("data/eval_scores") / f"{name}.parquet", pair_scores)
    write_json(Path("metrics/details") / f"{name}.json", metrics)
    with atomic_path(Path("metrics") / f"{name}.json") as tmp:  # in evaluate.sets order (validation first), not sorted
        tmp.write_text(json.dumps(headline(metrics, list(p.evaluate.sets)), indent=2) + "\n", encoding="utf-8")
    write_json(Path("metrics/env") / f"{name}.json", library_versions())  # not a metric: what produced them
    ci = metrics[CI_KEY]["stsb_validation"]["spearman_cosine"]
    print(
        f"{name}: spearman_cosine {metrics['spearman_cosine']:.4f} on STS-B validation "
        f"(95% CI {ci['low']:.4f}-{ci['high']:.4f}, {boot.resamples} resamples)"
    )


if __name__ == "__main__":
    run_stage(main)
