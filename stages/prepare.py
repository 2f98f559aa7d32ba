"""Stage `prepare`: the NLI pool and its subsets (the book's ranges) and the evaluation sets, as parquet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    from embedlab import data
    from embedlab.io import write_json, write_parquet
    from embedlab.nli import NLI_LABELS

    source = data.resolve_source(p.data.source, p.data.resolved_local_dir(), p.data.revisions)
    nli, nli_info = data.load_nli(source, p.prepare.nli_size, seed=p.seed)
    evals = {name: data.load_eval_set(source, name) for name in data.EVAL_LOADERS}
    if p.prepare.eval_max_pairs:
        evals = {k: v.select(range(min(p.prepare.eval_max_pairs, len(v)))) for k, v in evals.items()}

    gold = nli.select(range(p.prepare.gold_size))
    silver = nli.select(range(p.prepare.gold_size, p.prepare.gold_size + p.prepare.silver_size))
    tsdae = data.nli_sentences(nli, p.prepare.tsdae_rows)

    from datasets import Dataset

    out = Path("data/prepared")
    write_parquet(out / "nli.parquet", nli)
    write_parquet(out / "gold.parquet", gold)
    write_parquet(out / "silver.parquet", silver)
    write_parquet(out / "tsdae.parquet", Dataset.from_dict({"text": tsdae}))
    for name, ds in evals.items():
        write_parquet(Path("data/eval") / f"{name}.parquet", ds)

    def label_counts(ds) -> dict[str, int]:
        names = {v: k for k, v in NLI_LABELS.items()}
        counts: dict[str, int] = {}
        for label in ds["label"]:
            counts[names[label]] = counts.get(names[label], 0) + 1
        return counts

    write_json(
        out / "metadata.json",
        {
            "source": source.kind,
            "revisions": dict(source.revisions),  # hub: the commits loaded
            "nli": {**nli_info, "label_counts": label_counts(nli)},
            "subsets": {
                "nli": {"rows": len(nli), "range": [0, len(nli)]},
                "gold": {"rows": len(gold), "range": [0, len(gold)], "label_counts": label_counts(gold)},
                "silver": {
                    "rows": len(silver),
                    "range": [len(gold), len(gold) + len(silver)],
                    "label_counts": label_counts(silver),
                },
                "tsdae": {"rows_used": p.prepare.tsdae_rows, "sentences": len(tsdae)},
            },
            "eval": {name: {"pairs": len(ds)} for name, ds in evals.items()},
        },
    )
    print(
        f"prepared {len(nli)} NLI pairs ({nli_info['kind']}), gold {len(gold)}, silver {len(silver)}, "
        f"TSDAE {len(tsdae)} sentences; eval " + ", ".join(f"{k} {len(v)}" for k, v in evals.items())
    )


if __name__ == "__main__":
    run_stage(main)
