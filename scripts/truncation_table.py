"""README's Matryoshka table: Spearman cosine of embeddings cut to their first d dimensions, per model and set.

What ``SentenceTransformer(path, truncate_dim=d)`` gives (the first d columns, then cosine), computed from one
encoding per model (:func:`embedlab.evaluation.encode_unique`) instead of one per d. Reads the pipeline's outputs:
run it after ``dvc repro`` (or ``dvc pull``) from the repository root: ``python scripts/truncation_table.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MODELS = {  # matryoshka's reference is improved-rows: the same triplets and settings, without MatryoshkaLoss
    "untouched": "models/base/all-MiniLM-L6-v2",
    "improved-rows": "models/finetune-improved-rows",
    "matryoshka": "models/finetune-matryoshka",
}
SETS = ("stsb_validation", "stsb_test", "sickr")
DIMS = (384, 256, 128, 64, 32)


def main() -> None:
    from embedlab.evaluation import encode_unique, evaluate_sts_with_scores
    from embedlab.io import read_parquet
    from embedlab.models import load_sentence_transformer

    sets = {s: read_parquet(Path("data/eval") / f"{s}.parquet", ["sentence1", "sentence2", "score"]) for s in SETS}
    scores: dict[tuple[int, str], list[float]] = {}
    for label, path in MODELS.items():
        model = load_sentence_transformer(path)
        full = encode_unique(model, [ds[c] for ds in sets.values() for c in ("sentence1", "sentence2")])
        for d in DIMS:
            cut = {sentence: vector[:d] for sentence, vector in full.items()}
            scores[d, label] = [
                evaluate_sts_with_scores(model, ds, name, cache=cut)[0]["spearman_cosine"] for name, ds in sets.items()
            ]
    print("| d | " + " | ".join(MODELS) + " |")
    print("|---|" + "---|" * len(MODELS))
    for d in DIMS:
        print(f"| {d} | " + " | ".join(" / ".join(f"{v:.4f}" for v in scores[d, m]) for m in MODELS) + " |")


if __name__ == "__main__":
    main()
