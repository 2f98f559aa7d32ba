"""Start a training stage script under the launcher chosen in params.yaml (`launch:` section).

Usage (in dvc.yaml): python stages/launch.py stages/finetune.py improved
"""

import os
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's code, also in dvc exp

from embedlab.errors import ParamsError, run_stage
from embedlab.launch import command
from embedlab.params import load_params


def main() -> None:
    if len(sys.argv) < 2 or not Path(sys.argv[1]).is_file():
        raise ParamsError("usage: launch.py STAGE_SCRIPT [ARGS...]", "name a script under stages/")
    script, args = sys.argv[1], sys.argv[2:]
    launch = load_params().launch
    argv = command(launch, script, args)
    if argv is None:  # plain python: run in this interpreter (no second start-up)
        sys.argv = [script, *args]
        runpy.run_path(script, run_name="__main__")
        return
    print("launch:", " ".join(argv), flush=True)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    run_stage(main)
