"""Stage `adapt_pretrain` (10.6.2): TSDAE on the unlabelled Twitter corpus from the base model -> models/domain-tsdae.

Adaptive pre-training: the same TSDAE as 10.6.1 (``embedlab.tsdae``) on in-domain sentences. Refuses (exit 2,
nothing saved) when the held-out reconstruction loss did not drop or the STS-B validation score does not beat
averaging the base's input word embeddings. Curves: plots/adapt_pretrain; statistics: metrics/adapt_pretrain.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

NAME = "domain-tsdae"


def main() -> None:
    p = load_params()
    d = p.domain
    from embedlab.models import resolve_model

    resolve_model(d.base_model)  # fail on a bad name before reading data or importing torch
    from embedlab.evaluation import sts_evaluator
    from embedlab.io import read_parquet, write_json
    from embedlab.training import save_model
    from embedlab.tsdae import check_beats_floor, check_learned, run_tsdae, static_floor, sts_from, summary

    sentences = read_parquet("data/domain/corpus.parquet", ["text"])["text"][: d.tsdae.max_rows]
    val = read_parquet("data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    floor = static_floor(d.base_model, val)
    model, stats = run_tsdae(
        d.base_model,
        sentences,
        d.tsdae.settings(p.seed),
        checkpoint_dir=Path("checkpoints") / NAME,
        live_dir=Path("plots/adapt_pretrain"),
        evaluator=sts_evaluator(val, "stsb_validation", batch_size=p.evaluate.batch_size),
        pooling=d.pooling,
        del_ratio=d.del_ratio,
        heldout=d.heldout,
    )
    from embedlab.launch import is_main_process

    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks and saves
        return
    score = sts_from(stats)
    write_json(Path("metrics") / "adapt_pretrain.json", summary(stats, score, floor))
    check_learned(stats)
    check_beats_floor(NAME, score, floor)
    save_model(model, Path("models") / NAME)
    print(
        f"{NAME}: TSDAE on {stats['sentences']} Twitter sentences, {stats['steps']} steps in "
        f"{stats['train_seconds']:.0f} s; held-out reconstruction loss {stats['recon_loss_before']:.3f} -> "
        f"{stats['recon_loss_after']:.3f}; STS-B validation spearman_cosine {score:.4f} (floor {floor:.4f})"
    )


if __name__ == "__main__":
    run_stage(main)
