"""Stage `train_cross_encoder`: AugSBERT step 1, a 2-class cross-encoder on gold pairs -> models/cross_encoder.

A held-out slice of gold measures it (metrics/cross_encoder.json); a model that does not beat the majority class
is refused (exit 2, no model written), because labelling silver pairs with it would only add noise.
"""

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

MODEL_DIR = Path("models/cross_encoder")
CHECKPOINTS = Path("checkpoints/cross_encoder")
CURVES = Path("plots/train_cross_encoder")
METRICS = Path("metrics/cross_encoder.json")


def main() -> None:
    p = load_params()
    c = p.cross_encoder
    from embedlab import augsbert
    from embedlab.cards import stage_card
    from embedlab.io import read_parquet, write_json
    from embedlab.models import resolve_model
    from embedlab.nli import NLI_COLUMNS
    from embedlab.training import publish

    resolve_model(c.base)  # fail on a bad name before reading data or importing torch
    gold = augsbert.binary_pairs(read_parquet("data/prepared/gold.parquet", NLI_COLUMNS))
    train_pairs, holdout = augsbert.split_holdout(gold, c.holdout, p.seed)
    settings = c.settings(p.seed)
    model = augsbert.build_cross_encoder(c.base, c.max_seq_length, p.seed)  # seeded: fresh head
    run = augsbert.train_cross_encoder(
        model,
        train_pairs,
        settings,
        checkpoint_dir=CHECKPOINTS,
        live_dir=CURVES,
    )
    p_pos = augsbert.positive_probabilities(
        model, holdout["sentence1"], holdout["sentence2"], batch_size=c.eval_batch_size
    )
    metrics = augsbert.classification_metrics(holdout["label"], p_pos)
    metrics["beats_majority"] = metrics["accuracy"] > metrics["majority_accuracy"]
    write_json(METRICS, {"holdout": metrics, "train": {**run, "pairs": len(train_pairs)}})
    print(
        f"cross-encoder on {metrics['pairs']} held-out gold pairs: accuracy {metrics['accuracy']:.4f} "
        f"(majority class {metrics['majority_accuracy']:.4f}), F1 {metrics['f1']:.4f}, "
        f"AP {metrics['average_precision']:.4f}"
    )
    if c.refuse_below_majority:
        augsbert.check_cross_encoder(metrics)
    elif not metrics["beats_majority"]:
        print("warning: the cross-encoder does not beat the majority class (refuse_below_majority is off)")
    card = stage_card(p, "train_cross_encoder", MODEL_DIR, ["seed", "cross_encoder"], c.base)
    scores = {f"holdout {k}": v for k, v in metrics.items() if isinstance(v, float)}
    card = dataclasses.replace(card, metrics=scores, data={"gold pairs (train)": len(train_pairs)})
    publish(model, MODEL_DIR, checkpoint_dir=CHECKPOINTS, live_dir=CURVES, card=card)  # model, curves, no checkpoints


if __name__ == "__main__":
    run_stage(main)
