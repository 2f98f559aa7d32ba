"""Stage `train_tsdae` (10.6.1): TSDAE on the prepared TSDAE sentences -> models/tsdae.

`unsupervised.del_ratio` of each sentence's words deleted, CLS pooling in the book, the decoder tied to the encoder.
TSDAE, SimCSE and CT (stages train_tsdae, train_simcse, train_ct) start from the same encoder
(`unsupervised.base_model`'s transformer + a new `unsupervised.pooling`) and read the same sentences, so they
compare on one table. Refused (exit 2, nothing saved) when the held-out reconstruction loss did not drop or the
model does not beat averaging the base's word embeddings on STS-B validation. Curves: plots/train_tsdae; run
statistics: metrics/train_tsdae.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params


def main() -> None:
    p = load_params()
    from embedlab.tsdae import check_learned, run_tsdae
    from embedlab.unsupervised import train_stage

    u = p.unsupervised
    train_stage(p, "tsdae", run_tsdae, check=check_learned, del_ratio=u.del_ratio, heldout=u.heldout)


if __name__ == "__main__":
    run_stage(main)
