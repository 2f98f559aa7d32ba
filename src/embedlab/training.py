"""What every training stage shares: seeding, Trainer arguments, dvclive curves, NaN guard, resume, safe saving.

Methods (``scratch.py``, ``finetune.py``, ``augsbert.py``, ``tsdae.py``, ...) build a model, a dataset whose
columns are in the order their loss reads them, and a loss; :func:`train` does the rest the same way for all:

* ``SentenceTransformerTrainer`` (or ``CrossEncoderTrainer``) with the current API and a seeded sampler;
* training curves (loss, learning rate, eval score) logged with dvclive (``dvcyaml=False``: it never rewrites
  ``dvc.yaml``) into ``checkpoint_dir/curves``, and moved onto the folder ``dvc plots`` renders only when the run
  is published (:func:`publish`), so a failed or refused run leaves the last good run's curves;
* a non-finite loss stops training at once with the step number, instead of saving a broken model;
* periodic checkpoints outside DVC's outputs; a re-run after an interruption resumes from the last one, but only
  when the checkpoints were made by the same run (:func:`run_fingerprint`: settings, data, initial weights, loss,
  code, library versions); anything else is discarded with a message, so a changed param never inherits old weights;
* the model is saved as safetensors with a deterministic model card (:mod:`embedlab.cards`; the library's own
  embeds the training time) into a temporary folder that is renamed into place only when complete; the
  checkpoints are removed only after that, and a full disk is one error line (path, space needed, space free),
  so a rerun resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from embedlab.errors import EmbedlabError, ParamsError
from embedlab.io import atomic_path, write_json
from embedlab.params import TrainSettings  # what train() takes; defined with the schema it comes from

if TYPE_CHECKING:
    from embedlab.cards import CardInfo


class TrainingDiverged(EmbedlabError):
    """The loss became NaN or infinite."""


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


CURVES = "curves"  # checkpoint_dir/curves: where dvclive writes until the run is published onto live_dir


# Not transformers' DVCLiveCallback (issue #17, compared on one run): it names curves by raw key (loss and
# learning_rate outside train/, train/loss becomes the run's mean), counts steps per log call instead of
# global_step, writes a params.yaml holding the absolute output_dir, cannot resume curves from a checkpoint, and
# with HF_DVCLIVE_LOG_MODEL set it saves and copies the model itself.
def _live_callback(staging: Path):
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        """Training curves into ``staging`` with dvclive, without touching dvc.yaml or making experiments.

        Each checkpoint keeps a copy of the curves as they were when it was saved; a resumed run starts from that
        copy, so the points logged between that checkpoint and the interruption are not logged twice.
        """

        def __init__(self) -> None:
            self.live = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                from dvclive import Live

                resuming = state.global_step > 0
                snapshot = Path(args.output_dir) / f"checkpoint-{state.global_step}" / CURVES
                if resuming and snapshot.is_dir():
                    shutil.rmtree(staging, ignore_errors=True)
                    shutil.copytree(snapshot, staging)
                self.live = Live(str(staging), dvcyaml=False, save_dvc_exp=False, resume=resuming, report=None)

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

        def on_save(self, args, state, control, **kwargs):  # the checkpoint is complete (trainer_state.json)
            if self.live is not None and staging.is_dir():
                snapshot = Path(args.output_dir) / f"checkpoint-{state.global_step}" / CURVES
                shutil.copytree(staging, snapshot, dirs_exist_ok=True)

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


# --- which run made the checkpoints: resume only our own ---------------------------------------------------------

FINGERPRINT_FILE = "fingerprint.json"
FINGERPRINT_VERSION = 1
# Settings that say how a run is checkpointed, not what it computes: saving a checkpoint reads the RNG states but
# draws nothing, so the weights, the optimizer and the curves are the same for any save_steps. Everything else stays
# in: logging_steps and eval_steps only change the curves (a DVC output the resumed run appends to), eval_batch_size
# the logged scores, max_steps the schedule.
OPERATIONAL_SETTINGS = frozenset({"save_steps", "resume"})
# Modules that start a stage but never take part in its computation; which of them are loaded depends on how the
# stage was started (warm fork server or not, traced by a test or not), so hashing them would make the same run
# look different.
HARNESS_MODULES = frozenset({"embedlab.warm", "embedlab.trace"})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data that is the same in every process (no memory addresses)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):  # numpy array
        return f"array:{value.dtype}:{getattr(value, 'shape', '')}:{_sha(value.tobytes())}"
    if _is_tensor(value):
        return f"tensor:{value.dtype}:{tuple(value.shape)}:{_sha(_tensor_bytes(value))}"
    if isinstance(value, Path):
        return str(value)
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _tensor_bytes(tensor) -> bytes:
    """The raw bytes of any tensor (bf16 included, which NumPy cannot hold), wherever it lives."""
    import torch

    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _tensors_hash(named: Sequence[tuple[str, Any]]) -> str:
    h = hashlib.sha256()
    for name, tensor in named:
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        h.update(_tensor_bytes(tensor))
    return h.hexdigest()


def _data_hash(dataset) -> str:
    """Hash of the rows a Trainer would read: features, row count and every value, in order.

    JSON of plain Python batches: exact for the strings, ints and floats our datasets hold (``repr`` of a float
    round-trips), and independent of how Arrow happens to chunk the table (~0.1 s for 10^5 rows).
    """
    h = hashlib.sha256()
    parts = sorted(dataset.items()) if isinstance(dataset, Mapping) else [("", dataset)]
    for name, part in parts:
        h.update(json.dumps([name, str(part.features), len(part)]).encode())
        for batch in part.with_format(None).iter(batch_size=4096):
            h.update(json.dumps(batch, sort_keys=True, default=repr).encode())
    return h.hexdigest()


def _model_fingerprint(model) -> dict[str, Any]:
    """Initial weights (base model and seeded fresh heads), module configs (pooling has no weights) and vocabulary."""
    modules = [
        [name, type(module).__qualname__, _jsonable(module.get_config_dict())]
        if hasattr(module, "get_config_dict")
        else [name, type(module).__qualname__]
        for name, module in model.named_children()
    ]
    tokenizer = getattr(model, "tokenizer", None)
    vocab = tokenizer.get_vocab() if tokenizer is not None and hasattr(tokenizer, "get_vocab") else {}
    return {
        "weights": _tensors_hash(list(model.state_dict().items())),
        "modules": _sha(json.dumps(modules, sort_keys=True).encode()),
        "tokenizer": _sha(json.dumps([type(tokenizer).__qualname__, sorted(vocab.items())]).encode()),
    }


def _loss_fingerprint(loss, model) -> dict[str, Any]:
    """Class and config of the loss and of every module it adds to the model (inner losses, classifier heads),
    and the initial values of its own parameters (e.g. SoftmaxLoss's classifier): everything but the model itself."""
    in_model = {id(m) for m in model.modules()}
    model_tensors = {id(t) for t in (*model.parameters(), *model.buffers())}
    configs, tensors = [], []
    for name, module in loss.named_modules():
        if id(module) in in_model:
            continue
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else None
        configs.append([name, f"{type(module).__module__}.{type(module).__qualname__}", _jsonable(config)])
        own = (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False))
        tensors += [(f"{name}.{key}", t) for key, t in own if id(t) not in model_tensors]
    return {"modules": _sha(json.dumps(configs, sort_keys=True).encode()), "parameters": _tensors_hash(tensors)}


def _code_fingerprint() -> dict[str, str]:
    """Hashes of the source of every loaded ``embedlab`` module and of the stage script (``sys.argv[0]``).

    Keyed by module name, not path, so that a copy of the checkout (``dvc exp run``) counts as the same code.
    """
    code: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        if (name == "embedlab" or name.startswith("embedlab.")) and name not in HARNESS_MODULES:
            source = getattr(module, "__file__", None)
            if source and Path(source).is_file():
                code[name] = _sha(Path(source).read_bytes())
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.is_file():
        code["script"] = _sha(script.read_bytes())
    return code


def _versions() -> dict[str, str]:
    """The libraries recorded beside metrics (:func:`embedlab.environment.library_versions`), plus accelerate."""
    from embedlab.environment import _version, library_versions

    return {**library_versions(), "accelerate": _version("accelerate")}


def run_fingerprint(
    model,
    train_dataset,
    loss,
    settings: TrainSettings,
    *,
    trainer: str,
    batch_sampler: str,
    precision: tuple[bool, bool],
    evaluator=None,
) -> dict[str, Any]:
    """What decides the weights a run produces: a checkpoint is resumed only if its run's fingerprint is this one.

    ``settings`` minus :data:`OPERATIONAL_SETTINGS`; the rows; the initial weights; the loss; the Trainer and sampler;
    the resolved precision and process count (``auto`` may resolve differently elsewhere, and the global batch
    depends on the number of ranks); the code and library versions; the evaluator only when it runs during training,
    since only then its scores are part of what the checkpoint carries (the curves so far).
    """
    from embedlab.launch import world_size

    fields = {name: getattr(settings, name) for name in type(settings).model_fields}
    fingerprint: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "settings": _jsonable({k: v for k, v in fields.items() if k not in OPERATIONAL_SETTINGS}),
        "data": _data_hash(train_dataset),
        "model": _model_fingerprint(model),
        "loss": _loss_fingerprint(loss, model),
        "trainer": {"class": trainer, "batch_sampler": batch_sampler},
        "runtime": {"fp16": precision[0], "bf16": precision[1], "world_size": world_size()},
        "code": _code_fingerprint(),
        "versions": _versions(),
    }
    if evaluator is not None and settings.eval_steps:
        state = {k: v for k, v in vars(evaluator).items() if not k.startswith("_")}
        fingerprint["evaluator"] = {
            "class": type(evaluator).__qualname__,
            "state": _sha(json.dumps(_jsonable(state), sort_keys=True).encode()),
        }
    return fingerprint


def fingerprint_changes(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words: setting names, else ``part (keys)`` such as ``code
    (embedlab.finetune)``, else the part's name. Empty when they are equal."""
    if stored.get("version") != current.get("version"):
        return ["fingerprint format"]
    changed: list[str] = []
    for part in sorted(set(stored) | set(current)):
        old, new = stored.get(part), current.get(part)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            changed += keys if part == "settings" else [f"{part} ({', '.join(keys)})"]
        else:
            changed.append(part)
    return changed


def read_fingerprint(checkpoint_dir: Path) -> dict[str, Any] | None:
    """The fingerprint stored in ``checkpoint_dir``, or None if it has none (or an unreadable one)."""
    try:
        stored = json.loads((checkpoint_dir / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def prepare_checkpoint_dir(checkpoint_dir: Path, fingerprint: dict[str, Any], *, resume: bool) -> str | None:
    """The checkpoint to resume from, or None once ``checkpoint_dir`` holds only this run's fingerprint.

    Checkpoints are resumed only when the stored fingerprint equals ``fingerprint``; otherwise (or when there is
    none) they are deleted with one line saying why. Under DDP every rank decides from the same files and reaches
    the same answer; only rank 0 deletes and writes (a rank that reads while rank 0 replaces them sees either the
    old mismatching state or the new empty one: both mean "start over").
    """
    from embedlab.launch import is_main_process

    resume_from = None
    has_checkpoints = checkpoint_dir.is_dir() and any(p.is_dir() for p in checkpoint_dir.glob("checkpoint-*"))
    if resume and has_checkpoints:
        stored = read_fingerprint(checkpoint_dir)
        changed = fingerprint_changes(stored, fingerprint) if stored is not None else None
        if changed is None:
            print(f"{checkpoint_dir} holds checkpoints without a fingerprint of their run; starting over", flush=True)
        elif changed:
            print(
                f"{checkpoint_dir} were made by another run (changed: {', '.join(changed)}); starting over", flush=True
            )
        else:
            resume_from = last_complete_checkpoint(checkpoint_dir)
    if resume_from is not None:
        print(f"resuming from {resume_from}", flush=True)
        return resume_from
    if is_main_process():
        if checkpoint_dir.exists():
            shutil.rmtree(checkpoint_dir)
        write_json(checkpoint_dir / FINGERPRINT_FILE, fingerprint)  # before the first checkpoint can exist
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
    callbacks: Sequence[Any] = (),
    card: CardInfo | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``train_dataset`` with ``loss`` and save it to ``output_dir`` atomically.

    Returns run statistics (steps, final loss, wall time, pairs/s) for the stage's log or metrics.
    ``output_dir=None`` saves nothing: the caller checks the trained model first, then calls :func:`publish`.
    Until then the curves stay staged in ``checkpoint_dir`` and ``live_dir`` keeps the last published run's.
    ``callbacks``: extra ``transformers.TrainerCallback`` objects (the tests kill a run right after a checkpoint).
    Checkpoints in ``checkpoint_dir`` are resumed only if this same run made them (:func:`prepare_checkpoint_dir`).
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
    # before the Trainer: it may move the model to the GPU; the hash is of the weights as the method built them
    fingerprint = run_fingerprint(
        model,
        train_dataset,
        loss,
        settings,
        trainer=TrainerCls.__name__,
        batch_sampler=batch_sampler,
        precision=(fp16, bf16),
        evaluator=evaluator if kwargs["eval_strategy"] == "steps" else None,
    )
    live = [_live_callback(checkpoint_dir / CURVES)] if live_dir is not None else []
    trainer = _guarded(TrainerCls)(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=loss,
        evaluator=evaluator,
        callbacks=[*live, *callbacks],
    )
    with _disk_full_is_an_error(
        checkpoint_dir, _checkpoint_bytes(checkpoint_dir, model), "a checkpoint", checkpoints=True
    ):
        resume_from = prepare_checkpoint_dir(checkpoint_dir, fingerprint, resume=settings.resume)
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume_from)
        seconds = time.perf_counter() - start
        final_eval: dict[str, float] = {}
        if evaluator is not None and trainer.is_world_process_zero():  # evaluate once, on rank 0
            final_eval = evaluator(model)
            trainer.log({f"eval_{k}": v for k, v in final_eval.items()})
    steps = int(result.global_step)
    stats = {
        "steps": steps,
        "train_loss": float(result.training_loss),
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(steps * settings.batch_size / seconds, 2) if seconds > 0 else None,
        "rows": len(train_dataset),
        "fp16": fp16,
        "bf16": bf16,
        "final_eval": {k: float(v) for k, v in final_eval.items()},  # the evaluator's scores after training
    }
    if output_dir is not None:
        publish(model, output_dir, checkpoint_dir=checkpoint_dir, live_dir=live_dir, card=with_results(card, stats))
    return stats


def publish(
    model,
    output_dir: str | Path,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    card: CardInfo | None = None,
) -> None:
    """Save the model (and ``card``, :func:`save_model`), put this run's staged curves in ``live_dir``, then remove
    the checkpoints (rank 0).

    Called once the run passed its checks: a refused or failed run leaves the last good model and curves in place,
    and its checkpoints let a rerun resume (a failed save reruns no step: the last checkpoint is the final one).
    """
    from embedlab.launch import is_main_process

    if not is_main_process():
        return
    checkpoint_dir = Path(checkpoint_dir)
    save_model(model, output_dir, card)
    staged = checkpoint_dir / CURVES
    if live_dir is not None and staged.is_dir():
        needed = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
        curves = _disk_full_is_an_error(Path(live_dir), needed, "the training curves")
        with curves, atomic_path(live_dir, is_dir=True) as tmp:
            shutil.copytree(staged, tmp, dirs_exist_ok=True)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def sts_score(final_eval: dict[str, float]) -> float | None:
    """The Spearman cosine among an STS evaluator's final scores (None when the evaluator is not one)."""
    keys = [k for k in final_eval if k.endswith("spearman_cosine")]
    return float(final_eval[keys[0]]) if len(keys) == 1 else None


def train_checked(
    model,
    dataset,
    loss,
    settings,
    output_dir: str | Path,
    *,
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    evaluator=None,
    batch_sampler: Literal["batch_sampler", "no_duplicates", "group_by_label"] = "batch_sampler",
    what: str,
    check: Callable[[dict[str, Any]], None] | None = None,
    card: CardInfo | None = None,
) -> dict[str, Any]:
    """:func:`train`, refuse a collapsed model (STS evaluator given) and fail ``check(stats)``, then :func:`publish`.

    ``check`` runs on rank 0 before anything is saved: a stage's own floor (e.g. domain adaptation's
    bag-of-embeddings baseline) raises there, and the last good model and curves stay in place.
    """
    from embedlab.baselines import refuse_collapsed
    from embedlab.launch import is_main_process

    stats = train(
        model,
        dataset,
        loss,
        settings,
        None,
        checkpoint_dir=checkpoint_dir,
        live_dir=live_dir,
        evaluator=evaluator,
        batch_sampler=batch_sampler,
    )
    score = sts_score(stats["final_eval"])
    if score is not None and hasattr(evaluator, "sentences1"):
        refuse_collapsed(score, len(evaluator.sentences1), what)
    if check is not None and is_main_process():
        check(stats)
    publish(model, output_dir, checkpoint_dir=checkpoint_dir, live_dir=live_dir, card=with_results(card, stats))
    return stats


def with_results(card: CardInfo | None, stats: dict[str, Any]) -> CardInfo | None:
    """``card`` completed with what the run measured: its final scores and its training rows, unless given."""
    if card is None:
        return None
    return dataclasses.replace(
        card, metrics=card.metrics or stats["final_eval"], data=card.data or {"training rows": stats["rows"]}
    )


def save_model(model, output_dir: str | Path, card: CardInfo | None = None) -> None:
    """Save as safetensors, atomically, from rank 0 only, with ``card`` as a deterministic README.md.

    The library's own card embeds the training time (and more that varies, :mod:`embedlab.cards`), so it is not
    written here; :func:`embedlab.cards.write_model_card` writes one that two identical runs share byte for byte.
    """
    from embedlab.launch import is_main_process

    if not is_main_process():
        return
    with (
        _disk_full_is_an_error(Path(output_dir), _model_bytes(model), "the model"),
        atomic_path(output_dir, is_dir=True) as tmp,
    ):
        model.save(str(tmp), create_model_card=False, safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)
        if card is not None:
            from embedlab.cards import write_model_card

            write_model_card(model, tmp, card)


# --- a full disk: one line with the path, the space needed and the space free -----------------------------------


def _model_bytes(model) -> int:
    """Bytes of the model's tensors (shared ones once): about the size of its model.safetensors."""
    seen: dict[int, int] = {}
    for tensor in model.state_dict().values():
        seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
    return sum(seen.values())


def _checkpoint_bytes(checkpoint_dir: Path, model) -> int:
    """The size of the newest complete checkpoint, or before the first one: the weights and Adam's two moments."""
    found = sorted(checkpoint_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: p.stat().st_mtime)
    if found:
        return sum(p.stat().st_size for p in found[-1].parent.rglob("*") if p.is_file())
    return 3 * _model_bytes(model)


def _free_bytes(path: Path) -> int:
    """Free bytes on the file system of ``path`` (or of its nearest existing parent)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _disk_full(err: Exception, path: Path, needed: int) -> bool:
    """Whether ``err``, raised while writing under ``path``, means its file system is full.

    An ``OSError`` says so by its errno; safetensors by its message ("os error 28"); torch hides the cause in
    messages like "basic_ios::clear: iostream error" or "unexpected pos", so less than ``needed`` bytes free counts.
    """
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(err)
    return any(s in text for s in ("No space left", "os error 28", "StorageFull")) or _free_bytes(path) < needed


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


@contextlib.contextmanager
def _disk_full_is_an_error(path: Path, needed: int, what: str, *, checkpoints: bool = False) -> Iterator[None]:
    """Turn a full disk while writing ``what`` under ``path`` into an :class:`EmbedlabError` (checkpoints kept)."""
    try:
        yield
    except EmbedlabError:
        raise
    except Exception as err:
        if not _disk_full(err, path, needed):
            raise
        from embedlab.launch import is_main_process

        if checkpoints and is_main_process():  # a half-written checkpoint only takes space
            for folder in path.glob("checkpoint-*"):
                if folder.is_dir() and not (folder / "trainer_state.json").is_file():
                    shutil.rmtree(folder, ignore_errors=True)
        cause = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise EmbedlabError(
            f"no space left to write {what} to {path}: it needs about {_mb(needed)}, {_mb(_free_bytes(path))} "
            f"free ({type(err).__name__}: {cause})",
            "free disk space there (or make that folder a link to a larger disk) and rerun: the run resumes from its "
            "last checkpoint",
        ) from None
