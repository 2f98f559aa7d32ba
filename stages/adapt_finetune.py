"""Stage `adapt_finetune@<arm>` (10.6.2): supervised NLI fine-tuning (source domain) for the two arms.

* `adapted`: starts from models/domain-tsdae (TSDAE on Twitter) -> models/domain-adapted;
* `finetune`: the control, the same fine-tuning from the base model's transformer + the same new pooling
  (what TSDAE starts from), without TSDAE -> models/domain-finetune.

Recipe (`domain.recipe`, ``embedlab.finetune``) and settings (`domain.finetune`) are the same for both arms, so
the TSDAE step is the only difference. Refuses (exit 2, the last good model and curves kept) a model whose STS-B
validation score does not beat averaging the base's input word embeddings. Curves: plots/adapt_finetune/<arm>.
"""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params

ARMS = {"finetune": None, "adapted": "models/domain-tsdae"}  # None: the base model, no TSDAE


def main() -> None:
    p = load_params()
    d = p.domain
    if len(sys.argv) != 2 or sys.argv[1] not in ARMS:
        raise ParamsError(f"usage: adapt_finetune.py ARM with ARM one of {sorted(ARMS)}", "see dvc.yaml")
    arm = sys.argv[1]
    from embedlab.models import resolve_model

    init = ARMS[arm] or d.base_model
    resolve_model(init)  # fail on a missing model before reading data or importing torch
    from embedlab.evaluation import read_curve_pairs, sts_evaluator
    from embedlab.finetune import run_finetune
    from embedlab.io import atomic_path, read_parquet, write_json
    from embedlab.launch import is_main_process, rank
    from embedlab.tsdae import build_encoder, check_beats_floor, static_floor, sts_from, summary

    name = f"domain-{arm}"
    nli = read_parquet("data/prepared/nli.parquet", ["premise", "hypothesis", "label"])
    if d.finetune.max_rows is not None and d.finetune.max_rows < len(nli):
        nli = nli.select(range(d.finetune.max_rows))
    val = read_curve_pairs(p.evaluate.curve_pairs)
    floor = static_floor(d.base_model, val)
    if ARMS[arm] is None:  # the control starts from exactly what TSDAE starts from: transformer + new pooling
        init = str(Path("checkpoints") / f"{name}-init-rank{rank()}")  # one per process under a distributed launch
        build_encoder(d.base_model, d.pooling, d.finetune.max_seq_length, p.seed).save(init, create_model_card=False)
    output, live_dir = Path("models") / name, Path("plots/adapt_finetune") / arm
    # run_finetune publishes into this folder; only a model that beats the floor replaces the last good one
    staged = Path("checkpoints") / f"{name}-staged"
    try:
        stats = run_finetune(
            init,
            nli,
            d.recipe,
            d.finetune.settings(p.seed),
            staged / "model",
            checkpoint_dir=Path("checkpoints") / name,
            live_dir=staged / "curves",
            evaluator=sts_evaluator(val, "stsb_validation", batch_size=p.evaluate.batch_size),
        )
        if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks
            return
        score = sts_from(stats)
        write_json(Path("metrics") / f"adapt_finetune_{arm}.json", summary(stats, score, floor))
        check_beats_floor(name, score, floor)
        for src, dest in ((staged / "model", output), (staged / "curves", live_dir)):
            with atomic_path(dest, is_dir=True) as tmp:
                tmp.rmdir()
                shutil.move(src, tmp)  # a rename on one file system
    finally:
        if is_main_process():
            shutil.rmtree(staged, ignore_errors=True)
        if ARMS[arm] is None:
            shutil.rmtree(init, ignore_errors=True)
    print(
        f"{name}: recipe {d.recipe} from {ARMS[arm] or d.base_model + ' (no TSDAE)'} on {len(nli)} NLI rows, "
        f"{stats['steps']} steps in {stats['train_seconds']:.0f} s; STS-B validation spearman_cosine {score:.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
