"""Stage `export`: ONNX, int8 ONNX and OpenVINO variants of one bi-encoder -> models/export, metrics/export.json.

Each variant (and the torch model) is scored on STS-B validation (Spearman of cosine) and timed (sentences/s,
median of 3 interleaved rounds), so the speed-up is always reported beside what it costs in quality.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.params import load_params

OUT_DIR = Path("models/export")
METRICS = Path("metrics/export.json")


def main() -> None:
    p = load_params()
    e = p.export
    if e is None:
        raise ParamsError("params.yaml has no export section", "add `export: {model: models/finetune-improved}`")
    from embedlab import export
    from embedlab.cards import stage_card
    from embedlab.io import read_parquet, write_json
    from embedlab.models import load_sentence_transformer, resolve_model

    resolve_model(e.model)  # fail on a bad name before reading data or importing torch
    sts = read_parquet("data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    if e.max_pairs is not None:
        sts = sts.select(range(min(e.max_pairs, len(sts))))
    model = load_sentence_transformer(e.model, device="cpu")
    # openvino-int8 sets its activation ranges on unlabelled NLI sentences, not on the pairs it is scored on
    calibration = read_parquet("data/prepared/tsdae.parquet", ["text"])["text"][: export.CALIBRATION_SIZE]
    card = stage_card(p, "export", OUT_DIR, ["export"], e.model)
    paths = export.export_variants(model, OUT_DIR, e.variants, save_model=True, calibration=calibration, card=card)
    scores = export.score_variants(
        model, paths, sts["sentence1"], sts["sentence2"], sts["score"], batch_size=e.batch_size
    )
    write_json(METRICS, {"model": e.model, "pairs": len(sts), "stsb_validation": scores})
    for name, row in scores.items():
        print(
            f"{name:>14}: spearman_cosine {row['spearman_cosine']:.4f} ({row['relative_spearman']:.2%} of torch), "
            f"{row['sentences_per_s']:.0f} sentences/s ({row['speedup']:.2f}x)"
        )


if __name__ == "__main__":
    run_stage(main)
