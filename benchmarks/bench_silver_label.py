"""Silver labelling: the book's ``cross_encoder.predict(pairs, apply_softmax=True)`` vs our fast backends.

Same cross-encoder for every path (models/cross_encoder when the pipeline trained it, else a quick 1-epoch one,
see ``_cross_encoder.py``). Quality: hard-label agreement and |P(positive) difference| against the book's torch
path. The ONNX export time (done once per stage run) is reported separately and in the end-to-end ratio.

    python benchmarks/bench_silver_label.py [--pairs 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _cross_encoder import cross_encoder_path
from common import ROOT, interleaved, median, save


def candidate_pairs(n: int) -> list[tuple[str, str]]:
    """The stage's input when it exists, else the silver pool's given pairs (the CPU profile's strategy)."""
    import pyarrow.parquet as pq

    labelled = ROOT / "data/silver/candidates.parquet"
    if labelled.is_file():
        t = pq.read_table(labelled, columns=["sentence1", "sentence2"]).slice(0, n).to_pydict()
        return list(zip(t["sentence1"], t["sentence2"], strict=True))
    t = pq.read_table(ROOT / "data/prepared/silver.parquet", columns=["premise", "hypothesis"]).slice(0, n).to_pydict()
    return list(zip(t["premise"], t["hypothesis"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2000, help="pairs labelled per run (CPU profile stage: 8,000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="onnx-int8,openvino-int8")
    ap.add_argument("--name", default="silver_label", help="results/<name>.json")
    args = ap.parse_args()

    import numpy as np
    from sentence_transformers.cross_encoder import CrossEncoder

    from embedlab import export

    model_dir = cross_encoder_path()
    pairs = candidate_pairs(args.pairs)
    model = CrossEncoder(str(model_dir))
    variants = [v for v in args.variants.split(",") if v]
    tmp = Path(tempfile.mkdtemp(prefix="bench-silver-"))
    start = time.perf_counter()
    paths = export.export_variants(model, tmp / "export", variants, calibration=pairs)  # as the stage does
    export_s = time.perf_counter() - start
    fast = {v: export.FastModel(model, p) for v, p in paths.items()}

    outputs: dict[str, np.ndarray] = {}

    def book() -> None:  # the book's call, default batch size 32
        outputs["book"] = model.predict(pairs, apply_softmax=True)[:, 1]

    runs = {"book (torch predict, batch 32)": book}
    runs["torch predict, batch 64"] = lambda: model.predict(pairs, batch_size=64, apply_softmax=True)
    for v, fm in fast.items():
        runs[v] = lambda v=v, fm=fm: outputs.__setitem__(v, fm.predict(pairs, batch_size=64)[:, 1])
    times = interleaved(runs, args.repeats)

    base = median(times["book (torch predict, batch 32)"])
    ref = outputs["book"]
    rows = []
    for name, t in times.items():
        row = {"path": name, "median_s": round(median(t), 3), "times_s": [round(x, 3) for x in t]}
        row["pairs_per_s"] = round(len(pairs) / median(t), 1)
        row["ratio"] = round(base / median(t), 2)
        if name in outputs and name != "book":
            p = outputs[name]
            row["hard_agreement"] = float(((p > 0.5) == (ref > 0.5)).mean())
            row["max_abs_diff"] = float(np.abs(p - ref).max())
            row["p99_abs_diff"] = float(np.quantile(np.abs(p - ref), 0.99))
            # a model that calls almost every pair negative makes 0.5-agreement trivial: also compare the labels
            # at the reference's median score, a threshold with half of the pairs on each side
            threshold = float(np.median(ref))
            row["agreement_at_median"] = float(((p > threshold) == (ref > threshold)).mean())
            row["ratio_with_export"] = round(base / (median(t) + export_s), 2)
        rows.append(row)
        print(row)
    save(
        args.name,
        rows,
        pairs=len(pairs),
        model=str(model_dir.relative_to(ROOT)),
        export_s=round(export_s, 1),
        positive_rate=float((ref > 0.5).mean()),
        score_quantiles={q: float(np.quantile(ref, q)) for q in (0.01, 0.5, 0.99)},
    )


if __name__ == "__main__":
    main()
