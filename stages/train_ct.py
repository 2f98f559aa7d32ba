"""Stage `train_ct` (10.6.1): Contrastive Tension, in-batch negatives, on the prepared TSDAE sentences -> models/ct.

Same encoder and sentences as train_tsdae and train_simcse. Refused (exit 2, nothing saved) when the model does
not beat averaging the base's word embeddings on STS-B validation. Curves: plots/train_ct; run statistics:
metrics/train_ct.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    from embedlab.ct import run_ct
    from embedlab.unsupervised import train_stage

    train_stage(p, "ct", run_ct)


if __name__ == "__main__":
    run_stage(main)
