"""Export: sentences/s and STS-B validation Spearman of ONNX / int8 ONNX / OpenVINO variants vs the torch model.

The same code as the `export` stage (``embedlab.export.score_variants``: torch and every variant encode all
sentences of both columns, rounds interleaved, medians). Default model: models/finetune-improved when the
pipeline trained it, else the packaged all-MiniLM-L6-v2 (the baseline).

    python benchmarks/bench_export.py [--model PATH] [--repeats 3] [--pairs N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import ROOT, save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=None, help="first N STS-B validation pairs (default: all 1,500)")
    ap.add_argument("--variants", default="onnx,onnx-int8,openvino,openvino-int8")
    args = ap.parse_args()

    from embedlab import export
    from embedlab.io import read_parquet
    from embedlab.models import load_sentence_transformer

    improved = ROOT / "models/finetune-improved"
    name = args.model or (
        str(improved) if (improved / "modules.json").is_file() else "sentence-transformers/all-MiniLM-L6-v2"
    )
    model = load_sentence_transformer(name, device="cpu")
    sts = read_parquet(ROOT / "data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    if args.pairs:
        sts = sts.select(range(min(args.pairs, len(sts))))
    start = time.perf_counter()
    calibration = read_parquet(ROOT / "data/prepared/tsdae.parquet", ["text"])["text"][: export.CALIBRATION_SIZE]
    paths = export.export_variants(
        model,
        Path(tempfile.mkdtemp(prefix="bench-export-")) / "out",
        args.variants.split(","),
        calibration=calibration,  # as the export stage does
    )
    export_s = time.perf_counter() - start
    scores = export.score_variants(
        model, paths, sts["sentence1"], sts["sentence2"], sts["score"], batch_size=64, repeats=args.repeats
    )
    rows = [{"path": k, **{m: round(v, 4) for m, v in row.items()}} for k, row in scores.items()]
    for r in rows:
        print(r)
    save(
        "export",
        rows,
        model=name.replace(str(ROOT) + "/", ""),
        pairs=len(sts),
        sentences=2 * len(sts),
        export_s=round(export_s, 1),
    )


if __name__ == "__main__":
    main()
