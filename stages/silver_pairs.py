"""Stage `silver_pairs`: AugSBERT step 2, candidate pairs from the silver pool -> data/silver/candidates.parquet.

The strategy (given / random / semantic / bm25) is recorded in the file's `strategy` column and in
metrics/silver_pairs.json; the pool's labels are never read.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    s = p.silver_pairs
    from embedlab import silver
    from embedlab.io import read_parquet, write_json, write_parquet

    gold = read_parquet("data/prepared/gold.parquet", ["premise", "hypothesis"])
    pool = read_parquet("data/prepared/silver.parquet", ["premise", "hypothesis"]).select_columns(
        ["premise", "hypothesis"]
    )
    embedder = None
    if s.strategy == "semantic":
        from embedlab.models import load_sentence_transformer

        embedder = load_sentence_transformer(s.embedder)
    candidates, stats = silver.build_candidates(
        s.strategy,
        gold,
        pool,
        seed=p.seed,
        top_k=s.top_k,
        random_pairs_n=s.random_factor * len(gold),
        max_pairs=s.max_pairs,
        embedder=embedder,
        batch_size=s.batch_size,
    )
    write_parquet("data/silver/candidates.parquet", candidates)
    write_json("metrics/silver_pairs.json", stats)
    print(f"silver pairs ({s.strategy}): {stats['pairs']} candidates from {len(pool)} pool rows")


if __name__ == "__main__":
    run_stage(main)
