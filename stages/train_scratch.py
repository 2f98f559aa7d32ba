"""Stage `train_scratch@<loss>` (10.4): a new encoder trained on the NLI pool with one loss.

The encoder (`train_scratch.encoder`): the base model's transformer + mean pooling (book), or a static
embedding table drawn at random over its tokenizer (CPU profile: no pretrained weight).

softmax (3 NLI labels), cosine (entailment 1, else 0) or mnrl (entailment positives, contradiction hard
negatives); settings per loss under `train_scratch.losses`. The model goes to models/scratch-<loss>, its
curves (loss, learning rate, STS-B validation score) to plots/train_scratch/<loss>.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    t = p.train_scratch
    if len(sys.argv) != 2 or sys.argv[1] not in t.losses:
        raise ParamsError(
            f"usage: train_scratch.py LOSS with LOSS one of {sorted(t.losses)}", "see train_scratch.losses"
        )
    loss_name = sys.argv[1]
    run = t.losses[loss_name]
    from embedlab.models import resolve_model

    resolve_model(t.base_model)  # fail on a bad name before reading data or importing torch
    from embedlab import scratch
    from embedlab.cards import stage_card
    from embedlab.evaluation import read_curve_pairs, sts_evaluator
    from embedlab.io import read_parquet
    from embedlab.launch import is_main_process
    from embedlab.nli import NLI_COLUMNS, first_rows
    from embedlab.training import sts_score

    nli = first_rows(read_parquet("data/prepared/nli.parquet", NLI_COLUMNS), run.max_rows)
    curve, val = read_curve_pairs(p.evaluate.curve_pairs)
    evaluator = sts_evaluator(val, curve)
    name = f"scratch-{loss_name}"
    base = t.base_model if t.encoder == "transformer" else None
    keys = ["seed", "train_scratch.base_model", "train_scratch.encoder", "train_scratch.embedding_dim"]
    keys.append(f"train_scratch.losses.{loss_name}")
    stats = scratch.run_scratch(
        t.base_model,
        nli,
        loss_name,
        run.settings(p.seed),
        Path("models") / name,
        checkpoint_dir=Path("checkpoints") / name,
        live_dir=Path("plots/train_scratch") / loss_name,
        encoder=t.encoder,
        embedding_dim=t.embedding_dim,
        evaluator=evaluator,
        # a static table takes only the tokenizer from base_model: the card names no base model
        card=stage_card(p, f"train_scratch@{loss_name}", Path("models") / name, keys, base),
    )
    if not is_main_process():  # under a distributed launch every rank trains; rank 0 saves and reports
        return
    score = sts_score(stats["final_eval"])
    print(
        f"{name} ({t.encoder}): {stats['data']} from {len(nli)} NLI rows, "
        f"{stats['steps']} steps in {stats['train_seconds']:.0f} s, "
        f"train loss {stats['train_loss']:.4f}, STS-B validation spearman_cosine {score:.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
