"""A quickly trained cross-encoder for the silver-labelling benchmark, when the pipeline has not trained one.

Agreement between the torch and the fast path of the SAME model is what the benchmark checks; a trained model
(not a fresh head) makes that check meaningful, because its P(positive) spreads over [0, 1] instead of sitting at 0.5.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CACHE = ROOT / "benchmarks" / ".cache"
PIPELINE_MODEL = ROOT / "models" / "cross_encoder"


def cross_encoder_path(rows: int = 1200) -> Path:
    """models/cross_encoder when the pipeline trained one, else a 1-epoch one on ``rows`` gold pairs (cached)."""
    if (PIPELINE_MODEL / "config.json").is_file():
        return PIPELINE_MODEL
    out = CACHE / "cross_encoder"
    if (out / "config.json").is_file():
        return out
    from embedlab import augsbert
    from embedlab.io import read_parquet
    from embedlab.training import TrainSettings, save_model

    gold = augsbert.binary_pairs(read_parquet(ROOT / "data/prepared/gold.parquet", ["premise", "hypothesis", "label"]))
    model = augsbert.build_cross_encoder("sentence-transformers/all-MiniLM-L6-v2", 128)
    settings = TrainSettings(epochs=1, batch_size=16, learning_rate=5e-5, warmup=0.1, fp16=False, max_seq_length=128)
    augsbert.train_cross_encoder(model, gold.select(range(rows)), settings, checkpoint_dir=CACHE / "ce-checkpoints")
    save_model(model, out)
    return out


if __name__ == "__main__":
    print(cross_encoder_path())
