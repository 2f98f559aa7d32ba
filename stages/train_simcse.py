"""Stage `train_simcse` (10.6.1): unsupervised SimCSE on the prepared TSDAE sentences -> models/simcse.

Each sentence is its own positive through MNRL; dropout makes the two views differ. Same encoder and sentences as
train_tsdae and train_ct. Refused (exit 2, nothing saved) when the model does not beat averaging the base's word
embeddings on STS-B validation. Curves: plots/train_simcse; run statistics: metrics/train_simcse.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    from embedlab.simcse import run_simcse
    from embedlab.unsupervised import train_stage

    train_stage(p, "simcse", run_simcse)


if __name__ == "__main__":
    run_stage(main)
