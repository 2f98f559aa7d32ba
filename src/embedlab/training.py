"""What every training stage shares: seeding, Trainer arguments, dvclive curves, NaN guard, resume, safe saving.

Methods (``scratch.py``, ``finetune.py``, ``augsbert.py``, ``tsdae.py``, ...) build a model, a dataset whose
columns are in the order their loss reads them, and a loss; :func:`train` does the rest the same way for all:

* ``SentenceTransformerTrainer`` (or ``CrossEncoderTrainer``) with the current API and a seeded sampler;
* training curves (loss, learning rate, eval score) logged with dvclive into a folder ``dvc plots`` renders,
  with ``dvcyaml=False`` so dvclive never rewrites ``dvc.yaml``;
* a non-finite loss stops training at once with the step number, instead of saving a broken model;
* periodic checkpoints outside DVC's outputs; a re-run after an interruption resumes from the last one;
* the model is saved as safetensors without a model card (it embeds a timestamp) into a temporary folder that is
  renamed into place only when complete.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import EmbedlabError, ParamsError
from embedlab.io import atomic_path


class TrainingDiverged(EmbedlabError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainSettings:
    """Trainer settings a stage takes from its params section (defaults: the book's)."""

    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup: float = 100  # int >= 1: steps (the book's 100); float in [0, 1): ratio of all steps
    weight_decay: float = 0.01
    fp16: bool | Literal["auto"] = "auto"
    bf16: bool | Literal["auto"] = False  # auto: on where CUDA supports it; preferred to fp16 when both are auto
    torch_compile: bool = False
    eval_batch_size: int | None = None  # None: max(batch_size, 64)
    group_by_length: bool = False  # batches of similar text length (embedlab.batching); False: ST's samplers
    seed: int = 42
    max_seq_length: int | None = None
    logging_steps: int = 10
    eval_steps: int | None = None  # evaluate every N steps (None: only at the end)
    save_steps: int = 200  # checkpoint every N steps, for resuming after an interruption
    resume: bool = True
    max_steps: int = -1  # tests only: stop after N steps


def _cuda() -> tuple[bool, bool]:
    """(CUDA available, bf16 supported): the two facts :func:`precision` decides on."""
    import torch

    available = torch.cuda.is_available()
    return available, available and torch.cuda.is_bf16_supported()


def precision(fp16: bool | str, bf16: bool | str) -> tuple[bool, bool]:
    """The (fp16, bf16) pair the Trainer gets: never both, ``true`` only where it can run, ``auto`` prefers bf16.

    bf16 keeps fp32's exponent range (no loss scaling, no overflow), so with both ``auto`` a GPU that supports
    it gets bf16 and an older one fp16; a CPU gets neither. ``true`` where it cannot run is an error, not a
    silent no-op (params validation catches the GPU-less case earlier; this is the second line).
    """
    cuda, bf16_ok = _cuda()
    if fp16 is True and bf16 is True:
        raise ParamsError("fp16 and bf16 are both true", "pick one mixed precision (or auto for either)")
    if fp16 is True and not cuda:
        raise ParamsError("fp16 = true but no CUDA GPU is present", "set fp16: auto (on only where CUDA is present)")
    if bf16 is True and not bf16_ok:
        raise ParamsError(
            "bf16 = true but no CUDA GPU with bf16 support is present", "set bf16: auto (on only where supported)"
        )
    if bf16 is True:
        return False, True
    if fp16 is True:
        return True, False
    use_bf16 = bf16 == "auto" and bf16_ok
    use_fp16 = fp16 == "auto" and cuda and not use_bf16
    return use_fp16, use_bf16


def trainer_batch_sampler(
    kind: Literal["batch_sampler", "no_duplicates", "group_by_label"], group_by_length: bool
) -> Any:
    """The Trainer's ``batch_sampler`` argument: the method's own kind, or length-grouped batches that keep it."""
    if not group_by_length:
        return kind
    if kind == "group_by_label":
        raise ParamsError("group_by_length cannot be combined with a group_by_label sampler", "set it to false")
    import functools

    from embedlab.batching import LengthGroupedBatchSampler

    return functools.partial(LengthGroupedBatchSampler, no_duplicates=kind == "no_duplicates")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one call."""
    from transformers import set_seed

    set_seed(seed)


def _live_callback(live_dir: Path):
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        """Training curves into ``live_dir`` with dvclive, without touching dvc.yaml or making experiments."""

        def __init__(self) -> None:
            self.live = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                from dvclive import Live

                resuming = state.global_step > 0
                self.live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=resuming, report=None)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.live is None or not logs:
                return
            self.live.step = state.global_step  # before logging: each point at the step it belongs to
            for key, value in logs.items():
                if isinstance(value, int | float) and math.isfinite(value) and key not in {"epoch", "total_flos"}:
                    name = key.replace("eval_", "eval/") if key.startswith("eval_") else f"train/{key}"
                    self.live.log_metric(name, value, plot=True)
            self.live.step = state.global_step
            self.live.next_step()

        def on_train_end(self, args, state, control, **kwargs):
            if self.live is not None:
                self.live.end()
                self.live = None

    return LiveCallback()


def _guarded(trainer_cls):
    """A Trainer subclass whose ``compute_loss`` refuses a NaN/inf loss, naming the step."""

    class Guarded(trainer_cls):
        def compute_loss(self, *args, **kwargs):
            out = super().compute_loss(*args, **kwargs)
            loss = out[0] if isinstance(out, tuple) else out
            if not bool(loss.detach().isfinite().all()):
                raise TrainingDiverged(
                    f"training loss became {loss.detach().float().item()} at step {self.state.global_step + 1}",
                    "lower the learning rate, disable fp16, or check the data for empty/garbled rows",
                )
            return out

    Guarded.__name__ = f"Guarded{trainer_cls.__name__}"
    return Guarded


def trainer_arguments(
    settings: TrainSettings,
    checkpoint_dir: Path,
    *,
    evaluate: bool,
    batch_sampler: Literal["batch_sampler", "no_duplicates", "group_by_label"] = "batch_sampler",
) -> dict[str, Any]:
    """The keyword arguments of ``SentenceTransformerTrainingArguments`` (or the cross-encoder's) for ``settings``.

    A plain dict, so the mapping (precision, compile, batch sizes, sampler) is testable without a GPU.
    """
    fp16, bf16 = precision(settings.fp16, settings.bf16)
    return {
        "output_dir": str(checkpoint_dir),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.eval_batch_size or max(settings.batch_size, 64),
        "learning_rate": settings.learning_rate,
        "warmup_steps": settings.warmup,
        "weight_decay": settings.weight_decay,
        "fp16": fp16,
        "bf16": bf16,
        "torch_compile": settings.torch_compile,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "batch_sampler": trainer_batch_sampler(batch_sampler, settings.group_by_length),
        "eval_strategy": "steps" if evaluate and settings.eval_steps else "no",
        "eval_steps": settings.eval_steps,
        "logging_steps": settings.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": settings.save_steps,
        "save_total_limit": 1,
        "report_to": "none",
        "use_cpu": not _cuda()[0],
    }


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` whose save finished; removes newer ones that an interruption cut short.

    The Trainer writes a checkpoint in place (weights, optimizer, scheduler, RNG, then ``trainer_state.json``
    last), so a kill during a save leaves a folder that ``get_last_checkpoint`` would pick and resuming from it
    would crash. A readable ``trainer_state.json`` marks a complete one.
    """
    import json

    found = [p for p in checkpoint_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    for folder in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        try:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
            return str(folder)
        except (OSError, ValueError):
            from embedlab.launch import is_main_process

            print(f"ignoring the incomplete checkpoint {folder} (interrupted while saving)")
            if is_main_process():  # under DDP every rank skips it, rank 0 removes it
                shutil.rmtree(folder, ignore_errors=True)
    return None


def train(
    model,
    train_dataset,
    loss,
    settings: TrainSettings,
    output_dir: str | Path | None,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    evaluator=None,
    batch_sampler: Literal["batch_sampler", "no_duplicates", "group_by_label"] = "batch_sampler",
    cross_encoder: bool = False,
) -> dict[str, Any]:
    """Train ``model`` on ``train_dataset`` with ``loss`` and save it to ``output_dir`` atomically.

    Returns run statistics (steps, final loss, wall time, pairs/s) for the stage's log or metrics.
    ``output_dir=None`` saves nothing: the caller checks the trained model first, then calls :func:`save_model`.
    """

    if len(train_dataset) == 0:
        raise EmbedlabError("the training dataset is empty", "check the sizes in params.yaml")
    seed_everything(settings.seed)
    if settings.max_seq_length is not None and not cross_encoder:
        model.max_seq_length = settings.max_seq_length
    if evaluator is not None and settings.eval_batch_size is not None and hasattr(evaluator, "batch_size"):
        evaluator.batch_size = settings.eval_batch_size  # the stage's evaluator encodes in these batches too
    if cross_encoder:
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as TrainerCls
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as ArgsCls
    else:
        from sentence_transformers import SentenceTransformerTrainer as TrainerCls
        from sentence_transformers import SentenceTransformerTrainingArguments as ArgsCls
    from sentence_transformers.base.sampler import BatchSamplers  # noqa: F401  (enum values used below)

    checkpoint_dir = Path(checkpoint_dir)
    kwargs = trainer_arguments(settings, checkpoint_dir, evaluate=evaluator is not None, batch_sampler=batch_sampler)
    fp16, bf16 = kwargs["fp16"], kwargs["bf16"]
    args = ArgsCls(**kwargs)
    callbacks = [_live_callback(Path(live_dir))] if live_dir is not None else []
    trainer = _guarded(TrainerCls)(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=loss,
        evaluator=evaluator,
        callbacks=callbacks,
    )
    resume_from = None
    if settings.resume and checkpoint_dir.is_dir():
        resume_from = last_complete_checkpoint(checkpoint_dir)
        if resume_from:
            print(f"resuming from {resume_from}")
    elif checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    final_eval: dict[str, float] = {}
    if evaluator is not None and trainer.is_world_process_zero():  # evaluate once, on rank 0
        final_eval = evaluator(model)
        trainer.log({f"eval_{k}": v for k, v in final_eval.items()})
    if output_dir is not None:
        save_model(model, output_dir)
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    steps = int(result.global_step)
    return {
        "steps": steps,
        "train_loss": float(result.training_loss),
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(steps * settings.batch_size / seconds, 2) if seconds > 0 else None,
        "rows": len(train_dataset),
        "fp16": fp16,
        "bf16": bf16,
        "final_eval": {k: float(v) for k, v in final_eval.items()},  # the evaluator's scores after training
    }


def save_model(model, output_dir: str | Path) -> None:
    """Save as safetensors, without the model card (it embeds a timestamp), atomically, from rank 0 only."""
    from embedlab.launch import is_main_process

    if not is_main_process():
        return
    with atomic_path(output_dir, is_dir=True) as tmp:
        model.save(str(tmp), create_model_card=False, safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)
