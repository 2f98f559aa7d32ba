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


def param(key: str, value):
    return lambda repo: set_param(repo, key, value)


def cut_sts_dev(repo):
    """The repo's data folder (a dvc.yaml dependency) with sts-dev.csv cut inside a sentence, as a stopped copy."""
    path = repo.parent / "shared" / "data" / "stsb" / "sts-dev.csv"
    path.write_bytes(path.read_bytes()[:50_000])


def drop_snli_test(repo):
    """One of the four files of the NLI pool gone (a FIFO in its place would hang DVC itself, hashing the folder)."""
    (repo.parent / "shared" / "data" / "snli" / "snli_1.0_test.csv").unlink()


PREPARE_OUTS = ["data/prepared", "data/eval"]
CASES = [
    # (id, stage, how the input is broken, words the error line must hold, the stage's outputs)
    (
        "unknown-strategy",
        "silver_pairs",
        param("silver_pairs.strategy", "bm-25"),
        ["silver_pairs.strategy", "bm-25"],
        ["data/silver/candidates.parquet", "metrics/silver_pairs.json"],
    ),
    ("zero-size", "prepare", param("prepare.gold_size", 0), ["prepare.gold_size", "greater than 0"], PREPARE_OUTS),
    ("negative-seed", "prepare", param("seed", -1), ["seed = -1", "greater than or equal to 0"], PREPARE_OUTS),
    (
        "warmup-ratio",
        "finetune@book",
        param("finetune.recipes.book.warmup", 1.5),
        ["warmup", "ratio"],
        ["models/finetune-book", "plots/finetune/book"],
    ),
    (
        "infinite-learning-rate",
        "finetune@book",
        param("finetune.recipes.book.learning_rate", float("inf")),
        ["learning_rate = inf", "finite number"],
        ["models/finetune-book", "plots/finetune/book"],
    ),
    ("data-file-cut-short", "prepare", cut_sts_dev, ["sts-dev.csv: line", "cut short"], PREPARE_OUTS),
    ("data-file-missing", "prepare", drop_snli_test, ["lacks snli_1.0_test.csv"], PREPARE_OUTS),
]


@pytest.mark.parametrize(("case", "stage", "breaker", "words", "outs"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_under_dvc_repro_fails_in_one_line_and_keeps_every_output(
    repro_copy, case, stage, breaker, words, outs
):
    before = _snapshot(repro_copy, outs)
    lock = (repro_copy / "dvc.lock").read_bytes()
    assert before and dvc_status(repro_copy) == {}
    breaker(repro_copy)
    proc = run_dvc(repro_copy, "repro", "--single-item", stage, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(w in errors[0] for w in words), proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(repro_copy, outs) == before
    assert (repro_copy / "dvc.lock").read_bytes() == lock
    status = json.dumps(dvc_status(repro_copy))
    assert stage in status and "changed outs" not in status and "deleted" not in status  # only the input differs
