"""Stages `train_tsdae`, `train_simcse`, `train_ct` (10.6.1): one unsupervised method on the prepared TSDAE
sentences -> models/<method>.

All three start from the same encoder (`unsupervised.base_model`'s transformer + a new `unsupervised.pooling`)
and read the same sentences, so they compare on one table. TSDAE deletes `del_ratio` of the words and ties the
decoder to the encoder; SimCSE passes each sentence twice through MNRL (dropout makes the views differ); CT uses
in-batch negatives. A model that does not beat averaging the base's word embeddings on STS-B validation (or, for
TSDAE, whose held-out reconstruction loss did not drop) is refused: exit 2, nothing saved. Curves:
plots/train_<method>; run statistics: metrics/train_<method>.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params
from embedlab.unsupervised import METHODS


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in METHODS:
        raise ParamsError(f"usage: train_unsupervised.py METHOD with METHOD one of {list(METHODS)}", "see dvc.yaml")
    method = sys.argv[1]
    p = load_params()
    u = p.unsupervised
    from embedlab.models import resolve_model

    resolve_model(u.base_model)  # fail on a bad name before reading data or importing torch
    from embedlab.evaluation import read_curve_pairs
    from embedlab.io import read_parquet
    from embedlab.unsupervised import describe, train_checked

    run = getattr(u, method)
    noise = {"del_ratio": u.del_ratio, "heldout": u.heldout} if method == "tsdae" else {}
    stats = train_checked(
        method,
        u.base_model,
        read_parquet("data/prepared/tsdae.parquet", ["text"])["text"][: run.max_rows],
        run.settings(p.seed),
        read_curve_pairs(p.evaluate.curve_pairs),
        name=method,
        live_dir=f"plots/train_{method}",
        metrics_path=f"metrics/train_{method}.json",
        pooling=u.pooling,
        eval_batch_size=p.evaluate.batch_size,
        **noise,
    )
    if stats is not None:
        print(describe(method, stats))


if __name__ == "__main__":
    run_stage(main)
