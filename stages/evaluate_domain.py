"""Stage `evaluate_domain@<variant>` (10.6.2): TwitterPara average precision -> metrics/twitter-<variant>.json.

Variants: `zero-shot` (the base model as is), `domain-tsdae` (TSDAE on Twitter only), `domain-finetune` (NLI
fine-tuning, no TSDAE), `domain-adapted` (TSDAE then the same fine-tuning). AP of the cosine similarity against
the paraphrase labels on PIT-2015 test and Twitter URL test, and their mean, TwitterPara (TSDAE paper). Usage
(dvc.yaml's foreach): `evaluate_domain.py VARIANT MODEL`.

Written as `{set: {"average_precision": x}}` (`pit2015`, `twitter_url`, `twitterpara`), the `<set>.<metric>` shape of
the evaluate stage's headline, so `dvc metrics show/diff` and `python -m embedlab.compare` read both alike. Each pair's
cosine goes to data/eval_scores/<variant>@twitter.parquet, for the report's paired tests on the Twitter pairs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    if len(sys.argv) != 3:
        raise ParamsError("usage: evaluate_domain.py VARIANT MODEL", "see stage evaluate_domain in dvc.yaml")
    variant, name = sys.argv[1:]
    from embedlab.models import resolve_model

    resolve_model(name)  # fail on a missing model before reading data or importing torch
    from embedlab import domain
    from embedlab.evaluation import PAIR_SCORE_COLUMNS
    from embedlab.io import read_parquet, write_json, write_parquet
    from embedlab.models import load_sentence_transformer

    sets = {
        s: read_parquet(Path("data/domain/eval") / f"{s}.parquet", ["sentence1", "sentence2", "label"])
        for s in domain.EVAL_SETS
    }
    model = load_sentence_transformer(name)
    scores, pairs = domain.evaluate_domain_with_scores(model, sets, batch_size=p.domain.eval_batch_size)
    metrics = {k.removesuffix("_ap"): {"average_precision": round(v, 6)} for k, v in scores.items()}
    write_json(Path("metrics") / f"twitter-{variant}.json", metrics)
    write_parquet(Path("data/eval_scores") / f"{variant}@twitter.parquet", pairs[PAIR_SCORE_COLUMNS])  # paired tests
    print(f"{variant} ({name}): " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))


if __name__ == "__main__":
    run_stage(main)
