"""Stage `adapt_finetune@<arm>` (10.6.2): supervised NLI fine-tuning (source domain) for the two arms.

Usage (dvc.yaml's foreach): `adapt_finetune.py ARM INIT`, the fine-tuning starting point INIT being

* `models/domain-tsdae` for `adapted` (TSDAE on Twitter) -> models/domain-adapted;
* `domain.base_model` for `finetune`, the control: that model's transformer + the same new pooling (what TSDAE
  starts from), without TSDAE -> models/domain-finetune.

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


def main() -> None:
    p = load_params()
    d = p.domain
    if len(sys.argv) != 3:
        raise ParamsError("usage: adapt_finetune.py ARM INIT", "see stage adapt_finetune in dvc.yaml")
    arm, init = sys.argv[1:]
    from embedlab.finetune import get_recipe
    from embedlab.models import resolve_model

    get_recipe(d.recipe)  # fail on an unknown recipe or a missing model before reading data or importing torch
    resolve_model(init)
    from embedlab.baselines import record_then_check, static_floor
    from embedlab.cards import stage_card
    from embedlab.encoders import new_encoder
    from embedlab.evaluation import read_curve_pairs, sts_evaluator
    from embedlab.finetune import run_finetune
    from embedlab.io import read_parquet
    from embedlab.launch import is_main_process, rank
    from embedlab.nli import NLI_COLUMNS
    from embedlab.training import sts_score

    name = f"domain-{arm}"
    keys = ["seed", "domain.base_model", "domain.pooling", "domain.recipe", "domain.finetune"]
    nli = read_parquet("data/prepared/nli.parquet", NLI_COLUMNS)  # the recipe takes its first max_rows rows
    curve, val = read_curve_pairs(p.evaluate.curve_pairs)
    floor = static_floor(d.base_model, val)
    # INIT = the base model: the control, which starts from what TSDAE starts from (its transformer + new pooling)
    fresh = Path(resolve_model(init)).resolve() == Path(resolve_model(d.base_model)).resolve()
    start = str(Path("checkpoints") / f"{name}-init-rank{rank()}") if fresh else init  # one per DDP process
    if fresh:
        new_encoder(d.base_model, d.pooling, d.finetune.max_seq_length, p.seed).save(start, create_model_card=False)

    def write_stats_then_check(stats: dict) -> None:
        record_then_check(name, stats, floor, Path("metrics") / f"adapt_finetune_{arm}.json")

    try:
        stats = run_finetune(
            start,
            nli,
            d.recipe,
            d.finetune.settings(p.seed),
            Path("models") / name,
            max_rows=d.finetune.max_rows,
            checkpoint_dir=Path("checkpoints") / name,
            live_dir=Path("plots/adapt_finetune") / arm,
            evaluator=sts_evaluator(val, curve, batch_size=p.evaluate.batch_size),
            check=write_stats_then_check,
            card=stage_card(p, f"adapt_finetune@{arm}", Path("models") / name, keys, d.base_model if fresh else init),
        )
    finally:
        if fresh:
            shutil.rmtree(start, ignore_errors=True)
    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks, saves and reports
        return
    print(
        f"{name}: recipe {d.recipe} from {init}{' (no TSDAE)' if fresh else ''} on the {len(nli):,}-row NLI pool, "
        f"{stats['steps']} steps in {stats['train_seconds']:.0f} s; "
        f"STS-B validation spearman_cosine {sts_score(stats['final_eval']):.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
