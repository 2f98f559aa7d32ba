"""Stage `evaluate@<name>`: the book's STS metrics of one model (with bootstrap CIs) into metrics/<name>.json.

The versions of torch, transformers, sentence-transformers, datasets and dvc that computed them go beside, to
metrics/env/<name>.json (a plain output, so `dvc metrics show` stays numbers only).

Each pair's cosine score goes to data/eval_scores/<name>.parquet, for the report's paired bootstrap tests.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params


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
    from embedlab.io import read_parquet, write_json, write_parquet
    from embedlab.models import load_sentence_transformer, resolve_model

    spec = p.evaluate.models[name]
    resolve_model(spec.model)  # fail on a bad name before reading data or importing torch
    sets = {
        s: read_parquet(Path("data/eval") / f"{s}.parquet", ["sentence1", "sentence2", "score"])
        for s in p.evaluate.sets
    }
    model = load_sentence_transformer(spec.model)
    boot = p.evaluate.bootstrap
    metrics, pair_scores = evaluate_model_with_scores(
        model, sets, batch_size=p.evaluate.batch_size, resamples=boot.resamples, seed=boot.seed
    )
    write_parquet(Path("data/eval_scores") / f"{name}.parquet", pair_scores)
    write_json(Path("metrics") / f"{name}.json", metrics)
    write_json(Path("metrics/env") / f"{name}.json", library_versions())  # not a metric: what produced them
    ci = metrics["ci95"]["stsb_validation"]["spearman_cosine"]
    print(
        f"{name}: spearman_cosine {metrics['spearman_cosine']:.4f} on STS-B validation "
        f"(95% CI {ci['low']:.4f}-{ci['high']:.4f}, {boot.resamples} resamples)"
    )


if __name__ == "__main__":
    run_stage(main)
