"""The schema of ``params.yaml``: one pydantic model per section, checked at the start of every stage.

Unknown keys, wrong types and out-of-range values fail in well under a second with a message that names the
key, the bad value and what is allowed, before any model or dataset is loaded. Stages read the file through
:func:`load_params`; library functions never read it and take plain values instead.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from embedlab.errors import ParamsError

PositiveInt = Annotated[int, Field(gt=0)]
# numpy, torch and transformers all take a seed in [0, 2**32): -1 or 2**32 would crash a stage minutes in.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
DATA_DIR_ENV = "EMBEDLAB_DATA_DIR"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a model, recipe or stage-key name: safe in paths and dvc.yaml
EVAL_SETS = ("stsb_validation", "stsb_test", "sickr")
EvalSetName = Literal["stsb_validation", "stsb_test", "sickr"]


# Tracing (tests only, ``$EMBEDLAB_TRACE``): the dotted path of every section object, set by ``_register_paths``;
# while ``_TRACING`` is on, each leaf value a stage reads is reported to ``embedlab.trace``.
_TRACING = False
_PATHS: dict[int, str] = {}
_KEEP: list[Any] = []  # every traced params object stays alive, so no other object reuses its id()


class Section(BaseModel):
    """Strict base: no unknown keys, no silent type coercion (``"32"`` is not a batch size)."""

    # allow_inf_nan=False: `.inf`/`.nan` are YAML floats, but no size, rate or ratio here may be one.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if _TRACING and name in type(self).model_fields:
            prefix = _PATHS.get(id(self))
            if prefix is not None and not _is_container(value):
                from embedlab import trace

                trace.on_read(prefix + name, name not in super().__getattribute__("model_fields_set"))
        return value


def _is_container(value: Any) -> bool:
    """A section, or a dict of sections (recipes, losses, models): reading it reads nothing yet."""
    if isinstance(value, Section):
        return True
    return isinstance(value, dict) and bool(value) and all(isinstance(v, Section) for v in value.values())


def _register_paths(section: Section, prefix: str = "") -> None:
    _PATHS[id(section)] = prefix
    for name in type(section).model_fields:
        value = object.__getattribute__(section, name)
        if isinstance(value, Section):
            _register_paths(value, f"{prefix}{name}.")
        elif _is_container(value):
            for key, child in value.items():
                _register_paths(child, f"{prefix}{name}.{key}.")


class DataParams(Section):
    """Where raw data comes from, and the folder DVC tracks as the raw input of ``prepare`` and ``domain_corpus``.

    ``local_dir`` is a dependency in dvc.yaml (``${data.local_dir}``), so a changed or corrupted raw file reruns
    the stages that read it. ``auto`` and ``local`` read that folder; ``hub`` runs the book's ``load_dataset`` calls
    at the commits in ``revisions`` (the Twitter domain is local-only, so every profile names a folder).
    ``$EMBEDLAB_DATA_DIR`` may point a stage script run by hand elsewhere; under ``dvc repro`` it must be the same
    folder, or DVC would track one folder while the stage read another.
    """

    source: Literal["auto", "hub", "local"] = "auto"
    local_dir: str = Field(min_length=1, description="folder of the public files, relative to the repo root")
    revisions: dict[str, str] = Field(
        default_factory=dict, description="Hub dataset -> the commit (sha) that source: hub loads"
    )

    def resolved_local_dir(self) -> Path:
        param = Path(self.local_dir).expanduser()
        env = os.environ.get(DATA_DIR_ENV)
        if not env:
            return param
        env_dir = Path(env).expanduser()
        if os.environ.get("DVC_STAGE") and env_dir.resolve() != param.resolve():
            raise ParamsError(
                f"{DATA_DIR_ENV}={env} is not data.local_dir ({self.local_dir}), the folder dvc.yaml tracks",
                f"set data.local_dir: {env} in params.yaml (or unset {DATA_DIR_ENV})",
            )
        return env_dir


class BaseModelSpec(Section):
    """One base model: the Hub repo and the commit stage ``base_models`` copies into ``models/base/<name>``."""

    hub: str = Field(min_length=1, description="Hub id, e.g. sentence-transformers/all-MiniLM-L6-v2")
    revision: str = Field(pattern=r"^[0-9a-f]{40}$", description="the full commit sha (a branch name would move)")


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


class BootstrapParams(Section):
    """Seeded percentile bootstrap over the evaluation pairs: CIs in metrics, paired tests in the report."""

    resamples: int = Field(1000, ge=1000, description="resamples of the pairs (at least 1,000)")
    seed: Seed = 42


class EvaluateParams(Section):
    batch_size: PositiveInt = 64
    sets: list[EvalSetName] = Field(default_factory=lambda: list(EVAL_SETS), min_length=1)
    models: dict[str, EvalModel] = Field(min_length=1)
    bootstrap: BootstrapParams = BootstrapParams()
    curve_pairs: PositiveInt | None = Field(
        None, description="STS-B validation pairs scored during training (curves, checks); null = all"
    )

    @model_validator(mode="after")
    def _validation_first(self) -> EvaluateParams:
        if "stsb_validation" not in self.sets:
            raise ValueError("sets must include stsb_validation: it is the chapter's headline number")
        return self


def cuda_present() -> bool:
    """A cheap "is there an NVIDIA GPU?" (no torch import), so params fail fast; ``False`` only when sure.

    A machine with the driver has ``/proc/driver/nvidia`` or ``nvidia-smi``; ``CUDA_VISIBLE_DEVICES`` set to
    nothing (or -1) hides every GPU. A driver with a CPU-only torch passes here and is caught by
    ``embedlab.training.precision`` when training starts.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


AutoBool = bool | Literal["auto"]


class TrainerParams(Section):
    """Trainer settings shared by every training block; ``settings()`` makes them the :class:`TrainSettings` run."""

    epochs: float = Field(gt=0)
    batch_size: PositiveInt = 32
    learning_rate: float = Field(2e-5, gt=0)
    warmup: int | float = Field(description="int: steps (book: 100); float in [0, 1): ratio of all steps")
    weight_decay: float = Field(0.01, ge=0)
    max_seq_length: PositiveInt | None = None
    fp16: AutoBool = Field("auto", description="auto: on with CUDA (unless bf16 is); true needs a CUDA GPU")
    bf16: AutoBool = Field(False, description="auto: on with a CUDA GPU that supports bf16 (preferred to fp16)")
    torch_compile: bool = Field(False, description="torch.compile the model (GPU; slow first steps)")
    eval_batch_size: PositiveInt | None = Field(None, description="evaluation batch size (null: max(batch, 64))")
    group_by_length: bool = Field(False, description="batches of similar text length: less padding (batching.py)")
    save_steps: PositiveInt = Field(200, description="checkpoint every N steps; a re-run resumes from the last")

    @field_validator("fp16", "bf16", mode="before")
    @classmethod
    def _auto_true_or_false(cls, value: Any) -> Any:
        if value is not True and value is not False and value != "auto":
            raise ValueError("allowed: auto | true | false")
        return value

    @field_validator("fp16", "bf16")
    @classmethod
    def _true_needs_cuda(cls, value: bool | str) -> bool | str:
        if value is True and not cuda_present():
            raise ValueError("true needs a CUDA GPU and none is present; allowed here: auto | false")
        return value

    @model_validator(mode="after")
    def _warmup_steps_or_ratio(self) -> TrainerParams:
        if isinstance(self.warmup, float) and not 0 <= self.warmup < 1:
            raise ValueError(f"warmup = {self.warmup}: a float is a ratio in [0, 1); write steps as an int")
        if isinstance(self.warmup, int) and self.warmup < 0:
            raise ValueError(f"warmup = {self.warmup}: steps must be >= 0")
        if self.fp16 is True and self.bf16 is True:
            raise ValueError("fp16 and bf16 are both true: pick one mixed precision (or auto for either)")
        return self

    def settings(self, seed: int, **extra: Any) -> TrainSettings:
        """This block as the :class:`TrainSettings` that ``embedlab.training.train`` takes, with ``seed``: its
        Trainer fields (a block's data fields, such as ``max_rows`` or ``base``, stay here)."""
        shared = [name for name in TrainSettings.model_fields if name in type(self).model_fields]
        return TrainSettings(**{name: getattr(self, name) for name in shared}, seed=seed, **extra)


class TrainSettings(TrainerParams):
    """What ``embedlab.training.train`` takes: the Trainer fields of a params block (same types, same checks),
    plus the seed and what a run adds; defaults for a run built by hand (tests, benchmarks).

    Here, not in training.py, so that reading params never imports the training code (a stage's deps stay exact).
    """

    epochs: float = Field(1.0, gt=0)
    warmup: int | float = 100  # int: steps (the book's 100); float in [0, 1): ratio of all steps
    seed: Seed = 42
    logging_steps: PositiveInt = 10
    eval_steps: PositiveInt | None = None  # evaluate every N steps into the curves (None: only at the end)
    resume: bool = True  # continue from the last complete checkpoint of the same run
    max_steps: int = -1  # tests only: stop after N steps


class AugsbertTrainParams(TrainerParams):
    """Trainer settings of one AugSBERT model."""

    base: str = Field(min_length=1, description="model to start from (book: bert-base-uncased)")


class CrossEncoderParams(AugsbertTrainParams):
    """AugSBERT step 1: the cross-encoder trained on gold, checked on a held-out slice of it."""

    holdout: float = Field(gt=0, lt=0.5, description="fraction of gold held out for accuracy/F1/AP")
    refuse_below_majority: bool = Field(True, description="fail when held-out accuracy <= majority class")
    eval_batch_size: PositiveInt = 64


class SilverPairsParams(Section):
    """AugSBERT step 2: how candidate pairs are drawn from the silver pool."""

    strategy: Literal["given", "random", "semantic", "bm25"] = "given"
    top_k: PositiveInt = Field(3, description="semantic/bm25: neighbours per sentence")
    random_factor: PositiveInt = Field(4, description="random: pairs = random_factor x gold size")
    max_pairs: PositiveInt | None = Field(None, description="keep a seeded sample of at most this many pairs")
    embedder: str = Field("sentence-transformers/all-MiniLM-L6-v2", min_length=1)
    batch_size: PositiveInt = 64


class SilverLabelParams(Section):
    """AugSBERT step 3: the cross-encoder's labels for the candidates."""

    labels: Literal["hard", "soft"] = Field("hard", description="book: hard (argmax); soft: P(positive)")
    batch_size: PositiveInt = 64
    histogram_bins: PositiveInt = 10
    backend: Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = Field(
        "torch", description="book: torch (CrossEncoder.predict); others: embedlab.export, see benchmarks/README.md"
    )


class ExportParams(Section):
    """Stage ``export``: fast CPU variants (ONNX, int8 ONNX, OpenVINO) of one trained bi-encoder, each scored."""

    model: str = Field(min_length=1, description="model name or folder to export")
    variants: list[Literal["onnx", "onnx-int8", "openvino", "openvino-int8"]] = Field(
        default_factory=lambda: ["onnx", "onnx-int8", "openvino"], min_length=1
    )
    batch_size: PositiveInt = 64
    max_pairs: PositiveInt | None = Field(None, description="score the first N STS-B validation pairs (null: all)")


class TrainAugsbertParams(AugsbertTrainParams):
    """AugSBERT step 4: the bi-encoder (CosineSimilarityLoss), same settings for its comparison models."""


class Comparison(Section):
    """Two evaluated models the report tests against each other (paired bootstrap, same pairs)."""

    name: str = Field(min_length=1)
    a: str = Field(min_length=1, description="the reference model (an evaluate.models key)")
    b: str = Field(min_length=1, description="the model compared with it")


class ReportParams(Section):
    """The results report: which differences to test; models that were not evaluated are skipped."""

    comparisons: list[Comparison] = Field(default_factory=list)


class SupervisedRunParams(TrainerParams):
    """Trainer settings of one supervised model (10.4 losses, 10.5.1 recipes), with curves every N steps."""

    learning_rate: float = Field(gt=0, description="book: 5e-5 (the Trainer default its code leaves unset)")
    max_rows: PositiveInt | None = Field(None, description="train on the first N rows of the NLI pool (null: all)")
    logging_steps: PositiveInt = 10
    eval_steps: PositiveInt | None = Field(None, description="STS-B validation score every N steps in the curves")


class TrainScratchParams(Section):
    """10.4: a new encoder per loss, each with its settings: ``base_model``'s transformer + mean pooling, or a
    static embedding table drawn at random over ``base_model``'s tokenizer (``encoder: static``)."""

    base_model: str = Field(min_length=1, description="book: bert-base-uncased")
    encoder: Literal["transformer", "static"] = Field(
        "transformer", description="transformer: the book's; static: no pretrained weight (CPU profile)"
    )
    embedding_dim: PositiveInt = Field(256, description="static: the width of the random table")
    losses: dict[Literal["softmax", "cosine", "mnrl"], SupervisedRunParams] = Field(min_length=1)


class FinetuneParams(Section):
    """10.5.1: ``base_model`` fine-tuned on the NLI pool, one model per recipe (``embedlab.finetune.RECIPES``)."""

    base_model: str = Field(min_length=1, description="book: sentence-transformers/all-MiniLM-L6-v2")
    recipes: dict[Annotated[str, Field(pattern=NAME)], SupervisedRunParams] = Field(
        min_length=1, description="keys: names in embedlab.finetune.RECIPES (the stage refuses others)"
    )


class UnsupervisedRunParams(SupervisedRunParams):
    """Trainer settings of one unsupervised model (10.6); ``max_rows``: the first N sentences (null: all)."""

    weight_decay: float = Field(0.0, ge=0, description="book: 0 (the Trainer default)")


class EncoderFromBaseParams(Section):
    """A new encoder (``base_model``'s transformer + ``pooling``) pre-trained with TSDAE: 10.6.1 and 10.6.2 share it."""

    base_model: str = Field(min_length=1, description="book: bert-base-uncased")
    pooling: Literal["cls", "mean"] = Field("cls", description="book (TSDAE): cls; shared so the methods compare")
    del_ratio: float = Field(0.6, gt=0, lt=1, description="TSDAE noise: fraction of words deleted")
    heldout: PositiveInt = Field(256, description="TSDAE: sentences held out to check reconstruction improves")


class UnsupervisedParams(EncoderFromBaseParams):
    """10.6.1: TSDAE, SimCSE, CT from ``base_model``'s transformer + a new ``pooling``, on the TSDAE sentences."""

    tsdae: UnsupervisedRunParams
    simcse: UnsupervisedRunParams
    ct: UnsupervisedRunParams


class DomainParams(EncoderFromBaseParams):
    """10.6.2: TSDAE on unlabelled Twitter sentences, then NLI fine-tuning; scored by TwitterPara AP."""

    max_corpus_sentences: PositiveInt | None = Field(None, description="seeded sample of the corpus (null: all)")
    tsdae: UnsupervisedRunParams
    recipe: str = Field("book", pattern=NAME, description="embedlab.finetune.RECIPES name, for both arms")
    finetune: SupervisedRunParams
    eval_batch_size: PositiveInt = 64
    eval_max_pairs: PositiveInt | None = Field(None, description="seeded sample of each Twitter test set (tiny only)")


class LaunchParams(Section):
    """How training stages start: one process, ``torchrun`` (DDP, one or many nodes) or ``accelerate launch``."""

    launcher: Literal["python", "torchrun", "accelerate"] = "python"
    nproc_per_node: PositiveInt = 1
    nnodes: PositiveInt = 1
    node_rank: int = Field(0, ge=0)
    rdzv_backend: str = "c10d"
    rdzv_endpoint: str | None = Field(None, description="host:port of node 0 for multi-node torchrun")
    rdzv_id: str = "embedlab"
    accelerate_config: str | None = Field(None, description="accelerate config file (launcher: accelerate)")

    @model_validator(mode="after")
    def _multi_node_needs_endpoint(self) -> LaunchParams:
        if self.launcher == "torchrun" and self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("nnodes > 1 needs rdzv_endpoint (host:port of node 0)")
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank = {self.node_rank} must be < nnodes = {self.nnodes}")
        if self.accelerate_config and not Path(self.accelerate_config).is_file():
            raise ValueError(f"accelerate_config {self.accelerate_config} does not exist")
        return self


class Params(Section):
    seed: Seed = 42
    data: DataParams
    base_models: dict[Annotated[str, Field(pattern=NAME)], BaseModelSpec] = Field(min_length=1)
    prepare: PrepareParams
    evaluate: EvaluateParams
    launch: LaunchParams = LaunchParams()
    cross_encoder: CrossEncoderParams
    silver_pairs: SilverPairsParams
    silver_label: SilverLabelParams
    train_augsbert: TrainAugsbertParams
    train_scratch: TrainScratchParams
    finetune: FinetuneParams
    unsupervised: UnsupervisedParams
    domain: DomainParams
    report: ReportParams = ReportParams()
    export: ExportParams | None = None


class _ParamsLoader(yaml.SafeLoader):
    """YAML's safe loader, with YAML 1.2 floats: ``1e-5`` is a number, not the string PyYAML's 1.1 rules make it.

    ``dvc exp run -S finetune.learning_rate=1e-5`` writes exactly that into params.yaml.
    """


def _unique_keys(loader: _ParamsLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A mapping whose keys are all distinct: PyYAML keeps the last of two equal keys, DVC refuses the file."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_ParamsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)
_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+)$"),
    list("-+0123456789."),
)


_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|literal\[.*\]|[a-z-]+\[.*\])$")


def _one_per_key(errors: list[Any]) -> list[Any]:
    """Pydantic reports a value outside ``int | float`` once per member (``warmup.int``, ``warmup.float``).

    Keep one error per key, without the member's name: the one about the value (``finite_number``) if any, else
    the members' "should be" messages joined (``a valid integer, or a valid number``).
    """
    grouped: dict[tuple, list[Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        while loc and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]):
            loc = loc[:-1]
        grouped.setdefault(loc, []).append({**e, "loc": loc})
    merged = []
    for group in grouped.values():
        about_value = [e for e in group if not e["type"].endswith(("_type", "literal_error"))]
        if about_value or len(group) == 1:
            merged.append((about_value or group)[0])
        else:
            rest = ", or ".join(e["msg"].removeprefix("Input should be ") for e in group[1:])
            merged.append({**group[0], "msg": f"{group[0]['msg']}, or {rest}"})
    return merged


def _format_errors(err: ValidationError, path: Path) -> str:
    lines = []
    for e in _one_per_key(err.errors()):
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
        elif isinstance(e.get("input"), dict):  # a check across keys of a section: its message names them
            lines.append(f"{path}: {key}: {e['msg']}")
        else:
            lines.append(f"{path}: {key} = {e.get('input')!r}: {e['msg']}")
    return "\n".join(lines)


def in_batch_negative_runs(params: Params) -> dict[str, TrainerParams]:
    """The training blocks whose loss takes the other rows of a batch as negatives, by key path.

    MNRL (scratch ``mnrl``, the ``book`` recipe, SimCSE), GISTEmbed (the ``improved-gist`` recipe) and CT's
    in-batch variant (``ContrastiveTensionLossInBatchNegatives``, ``ct.py``) all do; the domain arm fine-tunes
    with one of the recipes. TSDAE, SoftmaxLoss and CosineSimilarityLoss score each row on its own.
    """
    runs: dict[str, TrainerParams] = {}
    if "mnrl" in params.train_scratch.losses:
        runs["train_scratch.losses.mnrl"] = params.train_scratch.losses["mnrl"]
    runs |= {f"finetune.recipes.{name}": run for name, run in params.finetune.recipes.items()}
    runs["unsupervised.simcse"] = params.unsupervised.simcse
    runs["unsupervised.ct"] = params.unsupervised.ct
    runs["domain.finetune"] = params.domain.finetune
    return runs


def _check_in_batch_negatives(params: Params, path: Path) -> None:
    bad = [
        f"{path}: {key}.batch_size = {run.batch_size}: must be >= 2: its loss uses the other rows of a batch as "
        "negatives (in-batch negatives), and a batch of 1 has none"
        for key, run in in_batch_negative_runs(params).items()
        if run.batch_size < 2
    ]
    if bad:
        raise ParamsError("\n".join(bad), "raise the batch size (the book: 32; larger gives more negatives)")


def parse_params(raw: Any, path: str | Path = "params.yaml") -> Params:
    """Validate an already-loaded mapping (e.g. a profile) against the schema."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path} must be a YAML mapping, got {type(raw).__name__}", "see params.yaml in git")
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, path), "edit params.yaml (allowed values are listed above)") from None
    _check_in_batch_negatives(params, path)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read ``params.yaml`` with YAML's safe loader and validate every section."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found", "run stages from the repository root, where params.yaml lives")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_ParamsLoader)  # a SafeLoader
    except yaml.MarkedYAMLError as err:  # one line: where, and what
        where = f"line {err.problem_mark.line + 1}, column {err.problem_mark.column + 1}" if err.problem_mark else ""
        what = " ".join(filter(None, [err.context, err.problem]))
        raise ParamsError(f"{path} is not valid YAML: {where}: {what}", "fix it at the line shown") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path} is not valid YAML: {err}", "fix the syntax at the line shown") from None
    params = parse_params(raw, path)
    if os.environ.get("EMBEDLAB_TRACE"):  # tests only: from here on, record the keys the stage reads
        global _TRACING
        _KEEP.append(params)
        _register_paths(params)
        _TRACING = True
    return params
