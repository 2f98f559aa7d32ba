"""A deterministic model card (README.md) in every saved model: same run, same bytes (DVC hashes model folders).

The card is sentence-transformers' own (architecture, usage snippet, dataset statistics, loss, evaluation tables,
hyperparameters, framework versions) with what varies between identical runs removed, plus a section on how this
project made the model: the ``dvc repro`` command, the stage's params, the training data counts, the final scores.

What sentence-transformers 6.2 puts in its card that two identical runs do not share, and what is done about it:

* "Training Time" (seconds since ``on_train_begin``): the start time and evaluation duration are cleared;
* "Training Logs" (loss and eval score per logging step): a resumed run only holds the steps after the resume, so
  they are left out (the curves are in ``plots/<stage>``, versioned by DVC);
* Hub look-ups (the base model's id and revision are guessed from its path when online): the base model is set
  from what the caller passes and ``local_files_only`` is forced, so online and offline give the same card;
* codecarbon emissions (only when installed and reporting): dropped;
* absolute paths (e.g. a loss config's ``decoder_name_or_path``) and ``<... at 0x...>`` addresses: rewritten to
  the model's relative path, ``.``, ``<python>``, ``<tmp>`` or ``~``, longest first.

Framework versions stay: they are the same within one environment (``requirements/*.txt``), as are the weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

CARD = "README.md"
SECTION = "## How this model was made"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_HUB_COMMENT = "# Download from the \U0001f917 Hub"  # the library's usage snippet; here it loads model_path


@dataclasses.dataclass(frozen=True)
class CardInfo:
    """What the card says about how the model was made; everything else comes from the model itself.

    Attributes:
        stage: the DVC stage that makes the model, as ``dvc repro`` takes it (``finetune@improved``).
        model_path: the model folder relative to the repository root (``models/finetune-improved``): the load
            snippet's argument.
        params: the stage's params, nested as in params.yaml (``{"finetune": {"recipes": {"improved": {...}}}}``).
        data: training data counts, ``{"NLI pairs": 10000}`` (values printed as given).
        metrics: the evaluator's scores after training (``train()["final_eval"]``), or None.
        base_model: the Hub id the weights started from (``sentence-transformers/all-MiniLM-L6-v2``), a project path
            (``models/domain-tsdae``), or None when trained from scratch.
        base_model_revision: the pinned Hub commit of ``base_model``, if any.
        title: the card's heading; by default the model folder's name.
    """

    stage: str
    model_path: str
    params: Mapping[str, Any]
    data: Mapping[str, Any]
    metrics: Mapping[str, float] | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    title: str | None = None

    @property
    def command(self) -> str:
        return f"dvc repro {self.stage}"


def write_model_card(model: Any, folder: str | Path, info: CardInfo) -> Path:
    """Write ``folder/README.md`` for ``model`` (a ``SentenceTransformer`` or ``CrossEncoder``) and return its path.

    Call it on the folder the model was just saved into (``model.save(..., create_model_card=False)``), before
    that folder is moved into place. The model must be the trained one: its ``model_card_data`` holds what the
    Trainer recorded (datasets, loss, hyperparameters, evaluator scores). Its card data is restored afterwards.
    Writes the same bytes for the same model and ``info``, wherever the checkout, the venv or the folder is.
    """
    folder = Path(folder)
    try:
        with _deterministic_card_data(model, info):
            from sentence_transformers.base.model_card import generate_model_card

            library_card = generate_model_card(model)
    except Exception as err:  # the library's card is a bonus: never lose a trained model over it
        logger.warning("sentence-transformers could not generate its model card (%s); writing embedlab's only", err)
        library_card = ""
    library_card = library_card.replace(_HUB_COMMENT, "# Load the model folder (`dvc pull` or `dvc repro` makes it)")
    text = _insert_section(library_card, _section(model, info), _title(info))
    text = _scrub(text, folder, info.model_path)
    target = folder / CARD
    with open(target, "w", encoding="utf-8", newline="\n") as f:
        f.write(text.rstrip("\n") + "\n")
    return target


def _title(info: CardInfo) -> str:
    return info.title or Path(info.model_path).name


def _kind(model: Any) -> str:
    return "CrossEncoder" if type(model).__name__ == "CrossEncoder" else "SentenceTransformer"


@contextlib.contextmanager
def _deterministic_card_data(model: Any, info: CardInfo) -> Iterator[None]:
    """Set ``model.model_card_data`` to what two identical runs share, restoring every changed field afterwards."""
    data = model.model_card_data
    hub_id = info.base_model if info.base_model and _HUB_ID.match(info.base_model) else None
    if hub_id and hub_id.split("/", 1)[0] in {"models", "data", "checkpoints"}:
        hub_id = None  # a project folder, not a Hub id
    changes: dict[str, Any] = {
        "local_files_only": True,
        "base_model": hub_id,
        "base_model_revision": info.base_model_revision if hub_id else None,
        "model_name": _title(info),
        "model_id": info.model_path,  # the usage snippet loads the model folder
        "training_logs": [],
        "best_model_step": None,
        "_training_start_time": None,
        "evaluation_duration": 0.0,
        "code_carbon_callback": None,
        "first_save": False,  # no base-model guessing from the transformer's path
    }
    saved = {key: getattr(data, key) for key in changes if hasattr(data, key)}
    try:
        for key, value in changes.items():
            if key in saved:
                setattr(data, key, value)
        yield
    finally:
        for key, value in saved.items():
            setattr(data, key, value)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(header: tuple[str, str], rows: Mapping[str, Any]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|:--|--:|"]
    lines += [f"| {key} | {_format(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def _section(model: Any, info: CardInfo) -> str:
    """embedlab's part of the card: the command, the params, the data, the scores, how to load it."""
    kind = _kind(model)
    params = yaml.safe_dump(_plain(info.params), sort_keys=False, allow_unicode=True, width=120).rstrip("\n")
    base = f"`{info.base_model}`" if info.base_model else "none (trained from scratch)"
    use = (
        'model.predict([("A man is eating food.", "A man eats something.")])'
        if kind == "CrossEncoder"
        else 'model.encode(["A man is eating food.", "A man is riding a horse."])'
    )
    parts = [
        SECTION,
        "",
        f"Made by the DVC stage `{info.stage}` of this repository (`dvc.lock` records the exact inputs and code):",
        "",
        "```bash",
        info.command,
        "```",
        "",
        f"- **Model folder:** `{info.model_path}`",
        f"- **Base model:** {base}",
        "",
        "### Parameters (params.yaml)",
        "",
        "```yaml",
        params,
        "```",
        "",
        "### Training data",
        "",
        _table(("Data", "Rows"), info.data) if info.data else "Not recorded.",
        "",
    ]
    if info.metrics:
        parts += ["### Final evaluation", "", _table(("Metric", "Value"), info.metrics), ""]
    parts += [
        "### Load it",
        "",
        "```python",
        f"from sentence_transformers import {kind}",
        "",
        f'model = {kind}("{info.model_path}")  # after `dvc pull` or `{info.command}`',
        use,
        "```",
    ]
    return "\n".join(parts)


def _plain(value: Any) -> Any:
    """Params as plain YAML types (a tuple, a Path or an enum must not become a python/object tag)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _insert_section(library_card: str, section: str, title: str) -> str:
    """The library's card with ``section`` before its first ``##`` heading, or a card of the section alone."""
    if not library_card.strip():
        return f"# {title}\n\n{section}\n"
    match = re.search(r"^## ", library_card, flags=re.MULTILINE)
    if match is None:
        return f"{library_card.rstrip()}\n\n{section}\n"
    return f"{library_card[: match.start()]}{section}\n\n{library_card[match.start() :]}"


def _scrub(text: str, folder: Path, model_path: str) -> str:
    """Absolute paths of this machine made relative or named, longest first; ``at 0x...`` addresses removed."""
    home = Path.home()
    roots = {
        str(folder.resolve()): model_path,
        str(folder.absolute()): model_path,
        str(Path.cwd().resolve()): ".",
        str(Path.cwd()): ".",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
        str(Path(tempfile.gettempdir()).resolve()): "<tmp>",
        tempfile.gettempdir(): "<tmp>",
        str(home): "~",
    }
    for root in sorted((r for r in roots if len(r) > 1), key=len, reverse=True):
        text = text.replace(root.rstrip(os.sep), roots[root])
    return _ADDRESS.sub("", text)


def stage_card(params: Any, stage: str, model_path: str | Path, keys: list[str], base_model: str | None) -> CardInfo:
    """The :class:`CardInfo` of a stage: ``params``' values at the dotted ``keys``, nested as in params.yaml.

    Only keys the stage declares may be read (a training stage's include ``seed``). A base model
    ``models/base/<name>`` is named as that folder: its Hub id and commit are ``base_models``' params, which the
    training stages do not depend on.
    """
    nested: dict[str, Any] = {}
    for key in keys:
        value: Any = params
        for part in key.split("."):
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return CardInfo(stage, Path(model_path).as_posix(), nested, {}, None, base_model)
