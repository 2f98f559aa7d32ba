"""Stage `domain_corpus` (10.6.2): the Twitter target domain's test pairs and its unlabelled training corpus.

Test pairs (data/domain/eval): PIT-2015 test without the debatable pairs, Twitter URL corpus test with its own
vote threshold. Corpus (data/domain/corpus.parquet, column `text`): the distinct sentences of PIT-2015
dev.data minus every sentence of those test pairs, optionally a seeded sample (domain.max_corpus_sentences).
Counts in data/domain/corpus.json. Reads $EMBEDLAB_DATA_DIR/twitterpara (or data.local_dir).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

OUT = Path("data/domain")


def main() -> None:
    p = load_params()
    from datasets import Dataset

    from embedlab import domain
    from embedlab.io import write_json, write_parquet

    root = domain.twitter_root(p.data.resolved_local_dir())
    evals = domain.load_eval_sets(root)
    candidates = domain.load_pit2015_sentences(root, "dev")
    corpus, counts = domain.build_corpus(
        candidates, domain.test_sentences(evals), p.domain.max_corpus_sentences, seed=p.seed
    )
    if p.domain.eval_max_pairs:  # tiny profile: a seeded sample of each test set, after the exclusion above
        evals = {k: domain.sample_pairs(v, p.domain.eval_max_pairs, p.seed) for k, v in evals.items()}
    for name, ds in evals.items():
        write_parquet(OUT / "eval" / f"{name}.parquet", ds)
    write_parquet(OUT / "corpus.parquet", Dataset.from_dict({"text": corpus}))
    write_json(
        OUT / "corpus.json",
        {
            "corpus": {"files": [str(domain.PIT_DIR / "dev.data")], **counts},
            "eval": {
                name: {"pairs": len(ds), "positives": int(sum(ds["label"])), "sentences": 2 * len(ds)}
                for name, ds in evals.items()
            },
            "eval_files": {
                "pit2015": [str(domain.PIT_DIR / "test.data"), str(domain.PIT_DIR / "test.label")],
                "twitter_url": [str(domain.URL_FILE)],
            },
        },
    )
    print(
        f"Twitter corpus: {counts['sentences']} sentences (of {counts['available']} distinct PIT-2015 dev sentences, "
        f"{counts['excluded_test_sentences']} dropped as test sentences); test pairs "
        + ", ".join(f"{k} {len(v)} ({sum(v['label'])} paraphrases)" for k, v in evals.items())
    )


if __name__ == "__main__":
    run_stage(main)
