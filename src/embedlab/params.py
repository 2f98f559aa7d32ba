"""The schema of ``params.yaml``: one pydantic model per section, checked at the start of every stage.

Unknown keys, wrong types and out-of-range values fail in well under a second with a message that names the
key, the bad value and what is allowed, before any model or dataset is loaded. Stages read the file through
:func:`load_params`; library functions never read it and take plain values instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embedlab.errors import ParamsError

PositiveInt = Annotated[int, Field(gt=0)]
DATA_DIR_ENV = "EMBEDLAB_DATA_DIR"
EVAL_SETS = ("stsb_validation", "stsb_test", "sickr")
EvalSetName = Literal["stsb_validation", "stsb_test", "sickr"]


class Section(BaseModel):
    """Strict base: no unknown keys, no silent type coercion (``"32"`` is not a batch size)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(Section):
    """Where raw data comes from.

    ``auto`` reads local files when a folder is given (here or in ``$EMBEDLAB_DATA_DIR``) and the Hugging Face
    Hub otherwise; ``hub`` and ``local`` force one source.
    """

    source: Literal["auto", "hub", "local"] = "auto"
    local_dir: str | None = None

    def resolved_local_dir(self) -> Path | None:
        value = self.local_dir or os.environ.get(DATA_DIR_ENV) or None
        return Path(value).expanduser() if value else None


class PrepareParams(Section):
    """Subsets of the NLI pool (the book: MNLI train rows 0..50k) and of the evaluation sets."""

    nli_size: PositiveInt = Field(description="rows of the NLI pool used for supervised training (book: 50,000)")
    gold_size: PositiveInt = Field(description="AugSBERT gold rows, the first of the pool (book: 10,000)")
    silver_size: PositiveInt = Field(description="AugSBERT silver rows, the next ones (book: 40,000)")
    tsdae_rows: PositiveInt = Field(description="rows whose premise+hypothesis feed TSDAE (book: 25,000)")
    eval_max_pairs: PositiveInt | None = Field(None, description="cap each eval set (tiny profile only)")

    @model_validator(mode="after")
    def _subsets_fit(self) -> PrepareParams:
        if self.gold_size + self.silver_size > self.nli_size:
            raise ValueError(
                f"gold_size + silver_size = {self.gold_size + self.silver_size} exceeds nli_size = "
                f"{self.nli_size}; gold and silver are both cut from the first nli_size rows"
            )
        if self.tsdae_rows > self.nli_size:
            raise ValueError(f"tsdae_rows = {self.tsdae_rows} exceeds nli_size = {self.nli_size}")
        return self


class EvalModel(Section):
    """A model to evaluate: a name (hub id, packaged alias) or a path, and the path DVC should track for it."""

    model: str = Field(min_length=1)
    dep: str = Field(min_length=1, description="file or folder the evaluate stage depends on")


class EvaluateParams(Section):
    batch_size: PositiveInt = 64
    sets: list[EvalSetName] = Field(default_factory=lambda: list(EVAL_SETS), min_length=1)
    models: dict[str, EvalModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _validation_first(self) -> EvaluateParams:
        if "stsb_validation" not in self.sets:
            raise ValueError("sets must include stsb_validation: it is the chapter's headline number")
        return self


class Params(Section):
    seed: int = 42
    data: DataParams = DataParams()
    prepare: PrepareParams
    evaluate: EvaluateParams


def _format_errors(err: ValidationError, path: Path) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = e["loc"][:-1]
            model: Any = Params
            for part in parent:
                field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
                model = field.annotation if field is not None else None
            allowed = sorted(model.model_fields) if hasattr(model, "model_fields") else []
            lines.append(f"{path}: unknown key '{key}' (allowed here: {', '.join(allowed)})")
        elif e["type"] == "missing":
            lines.append(f"{path}: missing key '{key}'")
        else:
            lines.append(f"{path}: {key} = {e.get('input')!r}: {e['msg']}")
    return "\n".join(lines)


def parse_params(raw: Any, path: str | Path = "params.yaml") -> Params:
    """Validate an already-loaded mapping (e.g. a profile) against the schema."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path} must be a YAML mapping, got {type(raw).__name__}", "see params.yaml in git")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, path), "edit params.yaml (allowed values are listed above)") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read ``params.yaml`` with YAML's safe loader and validate every section."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found", "run stages from the repository root, where params.yaml lives")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path} is not valid YAML: {err}", "fix the syntax at the line shown") from None
    return parse_params(raw, path)
