"""Bad input under `dvc repro` (not only stage scripts run by hand): one clear line, and nothing lost.

DVC removes a stage's outputs before it runs the command; a stage that refuses bad params puts the previous
outputs back from the DVC cache (``embedlab.restore``), so outputs and dvc.lock are as before.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import dvc_status, run_dvc, set_param


def _snapshot(repo, paths: list[str]) -> dict[str, str]:
    files = {}
    for rel in paths:
        root = repo / rel
        for f in sorted([root] if root.is_file() else root.rglob("*")):
            if f.is_file():
                files[f.relative_to(repo).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return files


CASES = [
    # (stage, key, bad value, words the message must hold, the stage's outputs)
    (
        "silver_pairs",
        "silver_pairs.strategy",
        "bm-25",
        ["silver_pairs.strategy", "bm-25"],
        ["data/silver/candidates.parquet", "metrics/silver_pairs.json"],
    ),
    ("prepare", "prepare.gold_size", 0, ["prepare.gold_size", "greater than 0"], ["data/prepared", "data/eval"]),
    (
        "finetune@book",
        "finetune.recipes.book.warmup",
        1.5,
        ["warmup", "ratio"],
        ["models/finetune-book", "plots/finetune/book"],
    ),
]


@pytest.mark.parametrize(("stage", "key", "value", "words", "outs"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_param_under_dvc_repro_fails_in_one_line_and_keeps_every_output(
    repro_copy, stage, key, value, words, outs
):
    before = _snapshot(repro_copy, outs)
    lock = (repro_copy / "dvc.lock").read_bytes()
    assert before and dvc_status(repro_copy) == {}
    set_param(repro_copy, key, value)
    proc = run_dvc(repro_copy, "repro", "--single-item", stage, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(w in errors[0] for w in words), proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(repro_copy, outs) == before
    assert (repro_copy / "dvc.lock").read_bytes() == lock
    status = dvc_status(repro_copy)
    assert set(status) == {stage} and "changed outs" not in json.dumps(status)  # only the param differs
