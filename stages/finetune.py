"""Stage `finetune@<recipe>` (10.5.1): the pretrained embedder fine-tuned on the NLI pool with one recipe.

`book` is the book's code (every pair an MNRL positive); the others are described in src/embedlab/finetune.py.
Settings per recipe under `finetune.recipes`. The model goes to models/finetune-<recipe>, its curves (loss,
learning rate, STS-B validation score) to plots/finetune/<recipe>.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    f = p.finetune
    if len(sys.argv) != 2 or sys.argv[1] not in f.recipes:
        raise ParamsError(f"usage: finetune.py RECIPE with RECIPE one of {sorted(f.recipes)}", "see finetune.recipes")
    recipe = sys.argv[1]
    run = f.recipes[recipe]
    from embedlab.finetune import get_recipe
    from embedlab.models import resolve_model

    get_recipe(recipe)  # fail on an unknown recipe or a bad model name before reading data or importing torch
    resolve_model(f.base_model)
    from embedlab.cards import stage_card
    from embedlab.evaluation import read_curve_pairs, sts_evaluator
    from embedlab.finetune import run_finetune
    from embedlab.io import read_parquet
    from embedlab.launch import is_main_process
    from embedlab.nli import NLI_COLUMNS
    from embedlab.training import sts_score

    nli = read_parquet("data/prepared/nli.parquet", NLI_COLUMNS)  # the recipe takes its first max_rows rows
    curve, val = read_curve_pairs(p.evaluate.curve_pairs)
    evaluator = sts_evaluator(val, curve)
    name = f"finetune-{recipe}"
    keys = ["seed", "finetune.base_model", f"finetune.recipes.{recipe}"]
    stats = run_finetune(
        f.base_model,
        nli,
        recipe,
        run.settings(p.seed),
        Path("models") / name,
        max_rows=run.max_rows,
        checkpoint_dir=Path("checkpoints") / name,
        live_dir=Path("plots/finetune") / recipe,
        evaluator=evaluator,
        card=stage_card(p, f"finetune@{recipe}", Path("models") / name, keys, f.base_model),
    )
    if not is_main_process():  # under torchrun every rank trains; rank 0 evaluates, saves and reports
        return
    score = sts_score(stats["final_eval"])
    print(
        f"{name}: {stats['data']} from the {len(nli):,}-row NLI pool, {stats['steps']} steps in "
        f"{stats['train_seconds']:.0f} s, train loss {stats['train_loss']:.4f}, STS-B validation {score:.4f}"
    )


if __name__ == "__main__":
    run_stage(main)
