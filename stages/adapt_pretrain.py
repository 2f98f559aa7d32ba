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
    from embedlab.cards import stage_card
    from embedlab.evaluation import read_curve_pairs
    from embedlab.io import read_parquet
    from embedlab.tsdae import check_learned, run_tsdae
    from embedlab.unsupervised import describe, train_unsupervised

    keys = ["seed", "domain.base_model", "domain.pooling", "domain.del_ratio", "domain.heldout", "domain.tsdae"]
    stats = train_unsupervised(
        run_tsdae,
        d.base_model,
        read_parquet("data/domain/corpus.parquet", ["text"])["text"][: d.tsdae.max_rows],
        d.tsdae.settings(p.seed),
        read_curve_pairs(p.evaluate.curve_pairs),
        name=NAME,
        live_dir="plots/adapt_pretrain",
        metrics_path="metrics/adapt_pretrain.json",
        pooling=d.pooling,
        eval_batch_size=p.evaluate.batch_size,
        del_ratio=d.del_ratio,
        heldout=d.heldout,
        check=check_learned,
        card=stage_card(p, "adapt_pretrain", Path("models") / NAME, keys, d.base_model),
    )
    if stats is not None:
        print(describe(f"{NAME} (TSDAE on Twitter)", stats))


if __name__ == "__main__":
    run_stage(main)
