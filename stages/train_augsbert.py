"""Stage `train_augsbert@<name>`: AugSBERT step 4 and its comparisons, bi-encoders with the same settings.

* `augsbert`: gold + the cross-encoder's silver labels (the book's model);
* `augsbert-gold-only`: the gold pairs alone;
* `augsbert-full-gold`: gold + the silver pool with its TRUE labels (the book's upper bound).

All are de-duplicated on (sentence1, sentence2) keeping gold, as the book does. Usage (dvc.yaml's foreach):
`train_augsbert.py NAME DATA`, DATA the pairs added to gold: a prepared NLI file (true labels, mapped like gold's;
gold itself for gold-only, which de-duplication reduces to gold) or the silver-labelled pairs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    if len(sys.argv) != 3:
        raise ParamsError("usage: train_augsbert.py NAME DATA", "see stage train_augsbert in dvc.yaml")
    name, silver_path = sys.argv[1:]
    t = p.train_augsbert
    from embedlab import augsbert
    from embedlab.cards import stage_card
    from embedlab.encoders import new_encoder
    from embedlab.io import read_parquet
    from embedlab.models import resolve_model
    from embedlab.nli import NLI_COLUMNS

    resolve_model(t.base)  # fail on a bad name before reading data or importing torch
    gold = augsbert.binary_pairs(read_parquet("data/prepared/gold.parquet", NLI_COLUMNS))
    if silver_path.startswith("data/prepared/"):  # true labels, mapped exactly like gold's
        silver = augsbert.binary_pairs(read_parquet(silver_path, NLI_COLUMNS))
    else:
        silver = read_parquet(silver_path, augsbert.PAIR_COLUMNS)
    pairs = augsbert.combine(gold, silver)
    settings = t.settings(p.seed)
    model = new_encoder(t.base, "mean", t.max_seq_length, p.seed)  # the book's SentenceTransformer(base)
    run = augsbert.train_bi_encoder(
        model,
        pairs,
        settings,
        Path("models") / name,
        checkpoint_dir=Path("checkpoints") / name,
        live_dir=Path("plots/train_augsbert") / name,
        card=stage_card(p, f"train_augsbert@{name}", Path("models") / name, ["seed", "train_augsbert"], t.base),
    )
    print(
        f"{name}: {len(pairs)} pairs ({len(gold)} gold + {len(pairs) - len(gold)} silver after de-duplication), "
        f"{run['steps']} steps in {run['train_seconds']:.0f} s, loss {run['train_loss']:.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
