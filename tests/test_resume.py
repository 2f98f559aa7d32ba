"""Resume only what belongs: a checkpoint is resumed only by the run that made it.

The end-to-end tests train the packaged all-MiniLM-L6-v2 for real (MNRL on 24 (anchor, positive) pairs, batch 4,
6 steps, max_seq_length 32, a checkpoint every 2 steps) in a subprocess running this file; an interrupted run is
SIGKILLed right after its first checkpoint is complete. Reruns then go through the real
:func:`embedlab.training.train` with the same ``checkpoint_dir``, and the saved ``model.safetensors`` bytes are
compared with those of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
LR_A, LR_B = 5e-4, 1e-4


def pairs(variant: int) -> dict[str, list[str]]:
    """24 (anchor, positive) pairs; variant 2 differs from 1 in one row (a data change the fingerprint must see)."""
    topics = ["cat", "train", "river", "piano", "garden", "storm", "bread", "clock", "ship", "mountain"]
    topics += ["coffee", "book"]
    anchor = [f"a {t} is described in sentence {i}" for i, t in enumerate(topics * 2)]
    positive = [f"sentence {i} talks about the {t}" for i, t in enumerate(topics * 2)]
    if variant == 2:
        positive[5] = "this row was edited after the first run"
    return {"anchor": anchor, "positive": positive}


def _train(args: argparse.Namespace) -> None:
    """Subprocess side: one real training run; ``--kill`` SIGKILLs it as soon as checkpoint-2 is complete."""
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from embedlab.models import load_sentence_transformer
    from embedlab.training import TrainSettings, train

    class KillAfterFirstSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # called once trainer_state.json is written
            os.kill(os.getpid(), signal.SIGKILL)

    model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    settings = TrainSettings(
        batch_size=4, learning_rate=args.lr, warmup=0.1, max_seq_length=32, logging_steps=1, save_steps=2
    )
    train(
        model,
        Dataset.from_dict(pairs(args.data)),
        MultipleNegativesRankingLoss(model),
        settings,
        args.out,
        checkpoint_dir=args.ckpt,
        callbacks=[KillAfterFirstSave()] if args.kill else [],
    )


def run_training(tmp: Path, ckpt: str, out: str | None, *, lr: float, data: int = 1, kill: bool = False) -> str:
    """Run one training in a fresh interpreter (cwd ``tmp``); return its output. A killed run must die by SIGKILL."""
    cmd = [sys.executable, str(HERE), "--lr", repr(lr), "--data", str(data), "--ckpt", ckpt]
    cmd += ["--out", out] if out else []
    cmd += ["--kill"] if kill else []
    # one thread: on a loaded 2-core machine, OpenMP threads spinning against other processes made a step 10x slower
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": ""}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    if kill:
        assert proc.returncode == -signal.SIGKILL, output
        assert (tmp / ckpt / "checkpoint-2" / "trainer_state.json").is_file(), output
        assert (tmp / ckpt / "fingerprint.json").is_file(), output
    else:
        assert proc.returncode == 0, output
        assert not (tmp / ckpt).exists(), "checkpoints are removed after a completed run"
    return output


def weights(tmp: Path, out: str) -> bytes:
    return (tmp / out / "model.safetensors").read_bytes()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> bytes:
    """(a) The model of an uninterrupted run at learning rate B."""
    tmp = tmp_path_factory.mktemp("resume")
    output = run_training(tmp, "ckpt", "model", lr=LR_B)
    assert "resuming" not in output and "starting over" not in output, output
    return weights(tmp, "model")


def test_a_changed_learning_rate_starts_over(tmp_path, uninterrupted):
    """(b) Checkpoints of a run at rate A are discarded by a run at rate B, whose model is B's, byte for byte."""
    run_training(tmp_path, "ckpt", None, lr=LR_A, kill=True)
    output = run_training(tmp_path, "ckpt", "model", lr=LR_B)
    assert "ckpt were made by another run (changed: learning_rate); starting over" in output, output
    assert "resuming" not in output, output
    assert weights(tmp_path, "model") == uninterrupted


@pytest.fixture(scope="module")
def killed_at_b(tmp_path_factory) -> Path:
    """The checkpoint folder of a run at rate B killed after checkpoint-2 (tests copy it: one kill serves two)."""
    tmp = tmp_path_factory.mktemp("killed")
    run_training(tmp, "ckpt", None, lr=LR_B, kill=True)
    return tmp / "ckpt"


def test_the_same_run_resumes_to_the_uninterrupted_model(tmp_path, uninterrupted, killed_at_b):
    """(c) Killed at rate B and rerun at rate B: resumed from checkpoint-2, and the model is the uninterrupted one."""
    shutil.copytree(killed_at_b, tmp_path / "ckpt")
    output = run_training(tmp_path, "ckpt", "model", lr=LR_B)
    assert "resuming from ckpt/checkpoint-2" in output and "starting over" not in output, output
    assert weights(tmp_path, "model") == uninterrupted


def test_changed_data_starts_over(tmp_path, uninterrupted, killed_at_b):
    """(d) One edited row of training data: the checkpoints are not this run's."""
    shutil.copytree(killed_at_b, tmp_path / "ckpt")
    output = run_training(tmp_path, "ckpt", "model", lr=LR_B, data=2)
    assert "ckpt were made by another run (changed: data); starting over" in output, output
    assert "resuming" not in output, output
    assert weights(tmp_path, "model") != uninterrupted  # trained on the other data from the start


# --- fast unit tests of the comparison and of the checkpoint folder's handling ---------------------------------


def fingerprint(**changes) -> dict:
    base = {
        "version": 1,
        "settings": {"learning_rate": 1e-4, "batch_size": 4, "seed": 42},
        "data": "d1",
        "model": {"weights": "w1", "modules": "m1", "tokenizer": "t1"},
        "code": {"embedlab.training": "c1", "script": "s1"},
    }
    for dotted, value in changes.items():
        part, _, key = dotted.partition("__")
        if key:
            base[part] = {**base[part], key: value}
        else:
            base[part] = value
    return base


def test_fingerprint_changes_name_what_changed():
    from embedlab.training import fingerprint_changes

    assert fingerprint_changes(fingerprint(), fingerprint()) == []
    changed = fingerprint_changes(fingerprint(), fingerprint(settings__learning_rate=2e-4, data="d2"))
    assert changed == ["data", "learning_rate"]
    changed = fingerprint_changes(fingerprint(), fingerprint(model__weights="w2", code__script="s2", seed=1))
    assert changed == ["code (script)", "model (weights)", "seed"]
    assert fingerprint_changes(fingerprint(), fingerprint(version=2)) == ["fingerprint format"]
    assert fingerprint_changes(fingerprint(), {**fingerprint(), "evaluator": {"class": "E"}}) == ["evaluator"]


def test_checkpoints_of_another_or_an_unknown_run_are_deleted(tmp_path, capsys):
    from embedlab.training import FINGERPRINT_FILE, prepare_checkpoint_dir, read_fingerprint

    ckpt = tmp_path / "ck"
    (ckpt / "checkpoint-2").mkdir(parents=True)
    (ckpt / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    # no fingerprint (made before fingerprints existed, or by hand): discarded, and the new one written
    assert prepare_checkpoint_dir(ckpt, fingerprint(), resume=True) is None
    assert "without a fingerprint of their run; starting over" in capsys.readouterr().out
    assert sorted(p.name for p in ckpt.iterdir()) == [FINGERPRINT_FILE]
    assert read_fingerprint(ckpt) == fingerprint()

    (ckpt / "checkpoint-2").mkdir()
    (ckpt / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    assert prepare_checkpoint_dir(ckpt, fingerprint(), resume=True) == str(ckpt / "checkpoint-2")
    assert capsys.readouterr().out == f"resuming from {ckpt / 'checkpoint-2'}\n"

    assert prepare_checkpoint_dir(ckpt, fingerprint(settings__seed=7), resume=True) is None
    assert f"{ckpt} were made by another run (changed: seed); starting over" in capsys.readouterr().out
    assert sorted(p.name for p in ckpt.iterdir()) == [FINGERPRINT_FILE]
    assert read_fingerprint(ckpt) == fingerprint(settings__seed=7)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one training run for the tests above")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--data", type=int, choices=(1, 2), default=1)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out")
    parser.add_argument("--kill", action="store_true")
    _train(parser.parse_args())
