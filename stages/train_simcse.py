"""Stage `train_simcse` (10.6.1): unsupervised SimCSE (each sentence its own positive through MNRL, dropout
makes the views differ) on the prepared TSDAE sentences -> models/simcse.

Same sentences, base transformer and pooling as TSDAE, so the three unsupervised objectives compare on one
table. Refuses (exit 2, nothing saved) a model whose STS-B validation score does not beat averaging the base's
input word embeddings. Curves: plots/train_simcse; run statistics: metrics/train_simcse.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

NAME = "simcse"


def main() -> None:
    p = load_params()
    u = p.unsupervised
    from embedlab.models import resolve_model

    resolve_model(u.base_model)  # fail on a bad name before reading data or importing torch
    from embedlab.evaluation import sts_evaluator
    from embedlab.io import read_parquet, write_json
    from embedlab.simcse import run_simcse
    from embedlab.training import save_model
    from embedlab.tsdae import check_beats_floor, static_floor, sts_from, summary

    run = u.simcse
    sentences = read_parquet("data/prepared/tsdae.parquet", ["text"])["text"][: run.max_rows]
    val = read_parquet("data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    floor = static_floor(u.base_model, val)
    model, stats = run_simcse(
        u.base_model,
        sentences,
        run.settings(p.seed),
        checkpoint_dir=Path("checkpoints") / NAME,
        live_dir=Path("plots/train_simcse"),
        evaluator=sts_evaluator(val, "stsb_validation", batch_size=p.evaluate.batch_size),
        pooling=u.pooling,
    )
    from embedlab.launch import is_main_process

    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks and saves
        return
    score = sts_from(stats)
    write_json(Path("metrics") / f"train_{NAME}.json", summary(stats, score, floor))
    check_beats_floor(NAME, score, floor)
    save_model(model, Path("models") / NAME)
    print(
        f"{NAME}: {stats['sentences']} sentences, {stats['steps']} steps in {stats['train_seconds']:.0f} s, "
        f"train loss {stats['train_loss']:.4f}; STS-B validation spearman_cosine {score:.4f} "
        f"(bag-of-embeddings floor {floor:.4f})"
    )


if __name__ == "__main__":
    run_stage(main)
