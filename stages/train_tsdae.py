"""Stage `train_tsdae` (10.6.1): TSDAE on the prepared TSDAE sentences -> models/tsdae.

The base model's transformer + a new pooling (CLS, as the book), 60 % of the words deleted, the decoder tied to
the encoder. Refuses (exit 2, nothing saved) when the held-out reconstruction loss did not drop or the model's
STS-B validation score does not beat averaging the base's input word embeddings. Curves: plots/train_tsdae;
run statistics and both checks: metrics/train_tsdae.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

NAME = "tsdae"


def main() -> None:
    p = load_params()
    u = p.unsupervised
    from embedlab.models import resolve_model

    resolve_model(u.base_model)  # fail on a bad name before reading data or importing torch
    from embedlab.evaluation import sts_evaluator
    from embedlab.io import read_parquet, write_json
    from embedlab.training import save_model
    from embedlab.tsdae import check_beats_floor, check_learned, run_tsdae, static_floor, sts_from, summary

    sentences = read_parquet("data/prepared/tsdae.parquet", ["text"])["text"][: u.tsdae.max_rows]
    val = read_parquet("data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    floor = static_floor(u.base_model, val)
    model, stats = run_tsdae(
        u.base_model,
        sentences,
        u.tsdae.settings(p.seed),
        checkpoint_dir=Path("checkpoints") / NAME,
        live_dir=Path("plots/train_tsdae"),
        evaluator=sts_evaluator(val, "stsb_validation", batch_size=p.evaluate.batch_size),
        pooling=u.pooling,
        del_ratio=u.del_ratio,
        heldout=u.heldout,
    )
    from embedlab.launch import is_main_process

    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks and saves
        return
    score = sts_from(stats)
    write_json(Path("metrics") / f"train_{NAME}.json", summary(stats, score, floor))
    check_learned(stats)
    check_beats_floor(NAME, score, floor)
    save_model(model, Path("models") / NAME)
    print(
        f"{NAME}: {stats['sentences']} sentences ({stats['deleted_word_fraction']:.0%} of words deleted), "
        f"{stats['steps']} steps in {stats['train_seconds']:.0f} s; held-out reconstruction loss "
        f"{stats['recon_loss_before']:.3f} -> {stats['recon_loss_after']:.3f}; STS-B validation spearman_cosine "
        f"{score:.4f} (bag-of-embeddings floor {floor:.4f})"
    )


if __name__ == "__main__":
    run_stage(main)
