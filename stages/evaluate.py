"""Stage `evaluate@<name>`: the book's STS metrics of one model into metrics/<name>.json."""

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
    from embedlab.evaluation import evaluate_model
    from embedlab.io import read_parquet, write_json
    from embedlab.models import load_sentence_transformer, resolve_model

    spec = p.evaluate.models[name]
    resolve_model(spec.model)  # fail on a bad name before reading data or importing torch
    sets = {
        s: read_parquet(Path("data/eval") / f"{s}.parquet", ["sentence1", "sentence2", "score"])
        for s in p.evaluate.sets
    }
    model = load_sentence_transformer(spec.model)
    metrics = evaluate_model(model, sets, batch_size=p.evaluate.batch_size)
    write_json(Path("metrics") / f"{name}.json", metrics)
    print(f"{name}: spearman_cosine {metrics['spearman_cosine']:.4f} on STS-B validation")


if __name__ == "__main__":
    run_stage(main)
