"""Stage `base_models`: each base model at its pinned revision -> models/base/<name> (what every stage loads).

`base_models` in params.yaml maps a folder name to a Hub id and commit. Online the files come from the Hub at
that commit; offline the packaged all-MiniLM-L6-v2 stands in for it. dvc.lock records the folders' hashes: the
identity of the weights every model here was trained from.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import run_stage
from embedlab.params import load_params

OUT = Path("models/base")


def main() -> None:
    p = load_params()
    from embedlab.models import materialize_base_model

    for name, spec in p.base_models.items():
        got = materialize_base_model(spec.hub, spec.revision, OUT / name)
        print(f"{OUT / name}: {spec.hub}@{spec.revision[:12]} from {got['source']}, model.safetensors {got['sha256']}")


if __name__ == "__main__":
    run_stage(main)
