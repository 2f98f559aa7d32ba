"""Stage `silver_label`: AugSBERT step 3, the cross-encoder labels the candidates -> data/silver/labeled.parquet.

Hard labels (the book's softmax argmax) or soft ones (P(positive)), computed by the book's torch ``predict`` or
a faster exported variant of the same model (``silver_label.backend``); the label distribution goes to
metrics/silver_stats.json and the score histogram to plots/silver_label/score_histogram.csv.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

CROSS_ENCODER = "models/cross_encoder"


def main() -> None:
    p = load_params()
    s = p.silver_label
    from embedlab import augsbert
    from embedlab.io import atomic_path, read_parquet, write_json, write_parquet
    from embedlab.models import resolve_model

    resolve_model(CROSS_ENCODER)  # a clear error when the cross-encoder stage has not run (or refused)
    candidates = read_parquet("data/silver/candidates.parquet", ["sentence1", "sentence2", "strategy"])
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(CROSS_ENCODER, trust_remote_code=False)
    p_pos = augsbert.positive_probabilities(
        model,
        candidates["sentence1"],
        candidates["sentence2"],
        batch_size=s.batch_size,
        show_progress=True,
        backend=s.backend,  # torch: the book's predict; onnx-int8 etc.: embedlab.export (benchmarks/README.md)
    )
    labels = augsbert.silver_labels(p_pos, s.labels)
    labeled = candidates.add_column("label", labels.tolist()).add_column("score", p_pos.tolist())
    write_parquet("data/silver/labeled.parquet", labeled)
    stats = augsbert.label_stats(p_pos, labels, s.labels)
    write_json("metrics/silver_stats.json", stats)
    rows = augsbert.score_histogram(p_pos, s.histogram_bins)
    with atomic_path("plots/silver_label/score_histogram.csv") as tmp:
        tmp.write_text(
            "bin,low,pairs\n" + "".join(f"{r['bin']},{r['low']},{r['pairs']}\n" for r in rows), encoding="utf-8"
        )
    print(
        f"labelled {stats['pairs']} silver pairs ({s.labels}): {stats['positive_rate']:.1%} positive, "
        f"mean P(positive) {stats['mean_score']:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
