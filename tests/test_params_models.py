"""Params schema and model resolution: clear errors before any long work."""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from embedlab import models, training
from embedlab import params as params_module
from embedlab.errors import EmbedlabError, ParamsError
from embedlab.finetune import IMPROVED, RECIPES, Recipe
from embedlab.params import in_batch_negative_runs, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
GPU_SETTINGS = {"bf16", "torch_compile", "eval_batch_size"}


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/book.yaml", "profiles/tiny.yaml"])
def test_every_profile_validates(profile):
    p = load_params(ROOT / profile)
    assert p.evaluate.models["baseline"].model == "models/base/all-MiniLM-L6-v2"
    assert p.base_models["all-MiniLM-L6-v2"].hub == models.MINILM
    assert p.base_models["all-MiniLM-L6-v2"].revision == "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


def test_profiles_have_the_same_sections_and_settings():
    """Every profile sets the same sections and top-level settings; values (and optional caps) may differ."""

    def keys(raw: dict) -> set[str]:
        return {f"{section}.{key}" for section, body in raw.items() if isinstance(body, dict) for key in body} | set(
            raw
        )

    def shared(raw: dict) -> set[str]:  # the book adds bert-base-uncased to base_models
        return {k for k in keys(raw) if k.rsplit(".", 1)[-1] not in GPU_SETTINGS and not k.startswith("base_models.")}

    cpu = shared(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for other in ("profiles/book.yaml", "profiles/tiny.yaml"):
        assert shared(yaml.safe_load((ROOT / other).read_text())) == cpu, other


def base() -> dict:
    return yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text())


def mutate(path: str, value) -> dict:
    raw = copy.deepcopy(base())
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


def parsed_value(path: str, value):
    """``path`` set to ``value`` in the tiny profile, then read back from the parsed params (attributes or keys)."""
    node = parse_params(mutate(path, value))
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("prepare.nli_sizee", 10, "unknown key 'prepare.nli_sizee'"),
        ("prepare.nli_size", "400", "prepare.nli_size = '400'"),
        ("prepare.nli_size", -5, "greater than 0"),
        ("prepare.gold_size", 0, "prepare.gold_size = 0"),
        ("prepare.silver_size", 10_000, "exceeds nli_size"),
        ("data.source", "s3", "'auto', 'hub' or 'local'"),
        ("evaluate.sets", ["stsb_validation", "sts12"], "evaluate.sets.1 = 'sts12'"),
        ("evaluate.batch_size", 1.5, "evaluate.batch_size = 1.5"),
    ],
)
def test_bad_params_name_key_value_and_allowed(path, value, expected):
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(path, value))
    assert expected in str(err.value)


def test_unknown_section_lists_allowed_keys():
    raw = base() | {"finetunee": {"lr": 1}}
    with pytest.raises(ParamsError, match=r"unknown key 'finetunee' \(allowed here: .*prepare"):
        parse_params(raw)


def test_minilm_aliases_resolve_to_packaged_copy_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    for name in ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        path = Path(models.resolve_model(name))
        assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()
    models.hub_reachable.cache_clear()


def test_online_resolution_keeps_the_hub_id(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    assert models.resolve_model("all-MiniLM-L6-v2") == models.MINILM
    assert models.resolve_model("bert-base-uncased") == "bert-base-uncased"


def test_local_folder_and_bad_names(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    packaged = models.packaged_minilm_path()
    assert models.resolve_model(str(packaged)) == str(packaged)
    with pytest.raises(EmbedlabError, match="'bert-base-uncased' is not a local folder"):
        models.resolve_model("bert-base-uncased")
    with pytest.raises(EmbedlabError, match="models/finetune-x does not exist"):
        models.resolve_model("models/finetune-x")
    with pytest.raises(EmbedlabError, match="holds no model"):
        models.resolve_model(str(tmp_path))


# --- mixed precision, in-batch negatives and the shared trainer settings --------------------------------------


@pytest.mark.parametrize("key", ["fp16", "bf16"])
@pytest.mark.parametrize("block", ["finetune.recipes.book", "cross_encoder", "unsupervised.tsdae", "domain.finetune"])
def test_mixed_precision_true_without_cuda_names_key_value_and_allowed(monkeypatch, block, key):
    monkeypatch.setattr(params_module, "cuda_present", lambda: False)
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(f"{block}.{key}", True))
    assert f"{block}.{key} = True" in str(err.value) and "auto | false" in str(err.value)
    monkeypatch.setattr(params_module, "cuda_present", lambda: True)
    assert parsed_value(f"{block}.{key}", True) is True  # the same value is kept where a GPU is


def test_fp16_and_bf16_both_true_is_refused(monkeypatch):
    monkeypatch.setattr(params_module, "cuda_present", lambda: True)
    raw = mutate("finetune.recipes.book.fp16", True)
    raw["finetune"]["recipes"]["book"]["bf16"] = True
    with pytest.raises(ParamsError, match="finetune.recipes.book: .*fp16 and bf16 are both true"):
        parse_params(raw)


def test_cuda_visible_devices_empty_means_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert params_module.cuda_present() is False


IN_BATCH = [  # every fine-tuning recipe (each in embedlab.finetune.RECIPES) uses in-batch negatives
    "train_scratch.losses.mnrl",
    *(f"finetune.recipes.{name}" for name in RECIPES if name in base()["finetune"]["recipes"]),
    "unsupervised.simcse",
    "unsupervised.ct",
    "domain.finetune",
]


@pytest.mark.parametrize("block", IN_BATCH)
def test_batch_of_one_is_refused_where_the_loss_needs_in_batch_negatives(block):
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(f"{block}.batch_size", 1))
    assert f"{block}.batch_size = 1: must be >= 2" in str(err.value) and "in-batch negatives" in str(err.value)


def test_in_batch_negative_runs_are_exactly_those():
    assert sorted(in_batch_negative_runs(parse_params(base()))) == sorted(IN_BATCH)


@pytest.mark.parametrize("block", ["train_scratch.losses.softmax", "unsupervised.tsdae", "train_augsbert"])
def test_batch_of_one_is_allowed_where_rows_are_scored_alone(block):
    assert parsed_value(f"{block}.batch_size", 1) == 1


def test_every_trainer_block_maps_its_new_settings():
    raw = base()
    extra = {"bf16": "auto", "torch_compile": True, "eval_batch_size": 128, "group_by_length": True, "save_steps": 7}
    raw["train_augsbert"] |= extra
    raw["finetune"]["recipes"]["improved"] |= extra
    p = parse_params(raw)
    for block in (p.train_augsbert, p.finetune.recipes["improved"]):
        s = block.settings(seed=3)
        assert (s.bf16, s.torch_compile, s.eval_batch_size, s.group_by_length, s.save_steps, s.seed) == (
            "auto",
            True,
            128,
            True,
            7,
            3,
        )
    assert p.finetune.recipes["improved"].settings(1).eval_steps == 2  # the supervised extras still pass through
    default = p.finetune.recipes["book"].settings(1)
    assert (default.bf16, default.torch_compile, default.eval_batch_size, default.group_by_length) == (
        False,
        False,
        None,
        False,
    )


@pytest.mark.parametrize(
    ("fp16", "bf16", "cuda", "expected"),
    [
        ("auto", False, (False, False), (False, False)),  # CPU: nothing (the CPU and tiny profiles)
        ("auto", False, (True, True), (True, False)),  # today's default on any GPU: fp16
        ("auto", "auto", (True, True), (False, True)),  # book profile on Ampere+: bf16, never both
        ("auto", "auto", (True, False), (True, False)),  # book profile on an older GPU: fp16
        ("auto", "auto", (False, False), (False, False)),  # book profile on a CPU: neither
        (False, "auto", (True, True), (False, True)),
        (False, False, (True, True), (False, False)),
        (True, "auto", (True, True), (True, False)),  # an explicit fp16 wins over bf16: auto
        ("auto", True, (True, True), (False, True)),
    ],
)
def test_precision_decision(monkeypatch, fp16, bf16, cuda, expected):
    monkeypatch.setattr(training, "_cuda", lambda: cuda)
    assert training.precision(fp16, bf16) == expected


@pytest.mark.parametrize(
    ("fp16", "bf16", "cuda", "message"),
    [
        (True, False, (False, False), "fp16 = true but no CUDA GPU"),
        (False, True, (False, False), "bf16 = true but no CUDA GPU with bf16"),
        (False, True, (True, False), "bf16 = true but no CUDA GPU with bf16"),
        (True, True, (True, True), "fp16 and bf16 are both true"),
    ],
)
def test_precision_refuses_what_cannot_run(monkeypatch, fp16, bf16, cuda, message):
    monkeypatch.setattr(training, "_cuda", lambda: cuda)
    with pytest.raises(ParamsError, match=message):
        training.precision(fp16, bf16)


def test_trainer_arguments_mapping(monkeypatch, tmp_path):
    monkeypatch.setattr(training, "_cuda", lambda: (True, True))
    s = training.TrainSettings(batch_size=16, fp16="auto", bf16="auto", torch_compile=True, eval_batch_size=256)
    kw = training.trainer_arguments(s, tmp_path, evaluate=True, batch_sampler="no_duplicates")
    assert (kw["fp16"], kw["bf16"], kw["torch_compile"], kw["use_cpu"]) == (False, True, True, False)
    assert kw["per_device_eval_batch_size"] == 256 and kw["batch_sampler"] == "no_duplicates"
    monkeypatch.setattr(training, "_cuda", lambda: (False, False))
    default = training.trainer_arguments(training.TrainSettings(batch_size=16), tmp_path, evaluate=False)
    assert (default["fp16"], default["bf16"], default["torch_compile"], default["use_cpu"]) == (
        False,
        False,
        False,
        True,
    )
    assert default["per_device_eval_batch_size"] == 64 and default["batch_sampler"] == "batch_sampler"


def test_group_by_length_keeps_the_methods_sampler_kind(tmp_path):
    from embedlab.batching import LengthGroupedBatchSampler

    grouped = training.trainer_batch_sampler("no_duplicates", True)
    assert grouped.func is LengthGroupedBatchSampler and grouped.keywords == {"no_duplicates": True}
    assert training.trainer_batch_sampler("batch_sampler", True).keywords == {"no_duplicates": False}
    with pytest.raises(ParamsError, match="group_by_label"):
        training.trainer_batch_sampler("group_by_label", True)


PROFILES = {"CPU": ROOT / "params.yaml", "book": ROOT / "profiles/book.yaml", "tiny": ROOT / "profiles/tiny.yaml"}
WEIGHT_SETTINGS = [  # what changes the trained weights (eval_steps and logging_steps only change the curves)
    "epochs", "batch_size", "learning_rate", "warmup", "max_seq_length", "max_rows", "weight_decay", "group_by_length"
]  # fmt: skip


@pytest.mark.parametrize("profile", ["CPU", "book", "tiny"])
def test_each_ablation_comparison_changes_exactly_one_ingredient(profile):
    raw = yaml.safe_load(PROFILES[profile].read_text())
    recipes = raw["finetune"]["recipes"]
    variants = [name for name in recipes if name.startswith("improved-")]
    expected = ["improved-pairs", "improved-gist", "improved-sampler", "improved-lr", "improved-rows"]
    assert variants == expected
    ablations = [c for c in raw["report"]["comparisons"] if c["name"].startswith("ablation: ")]
    assert sorted(c["b"] for c in ablations) == sorted(f"finetune-{v}" for v in variants)  # each variant once
    for c in ablations:
        ref, var = (c[k].removeprefix("finetune-") for k in ("a", "b"))
        assert ref in ("improved", "improved-rows") and {c["a"], c["b"]} <= set(raw["evaluate"]["models"]), c
        recipe_diff = [f.name for f in fields(Recipe) if getattr(RECIPES[ref], f.name) != getattr(RECIPES[var], f.name)]
        settings_diff = [k for k in recipes[ref] if recipes[var][k] != recipes[ref][k]]
        assert len(recipe_diff) + len(settings_diff) == 1, (c["name"], recipe_diff, settings_diff)
    assert recipes["improved-lr"]["learning_rate"] == recipes["book"]["learning_rate"] == 5e-5
    rows = {"CPU": (None, 3000), "book": (None, 3000), "tiny": (120, 60)}[profile]  # the headline's, the ablation's
    assert (recipes["improved"]["max_rows"], recipes["improved-rows"]["max_rows"]) == rows


def test_ablation_recipes_differ_from_improved_in_the_named_ingredient():
    assert RECIPES["improved"] == IMPROVED == Recipe(data="triplets", loss="mnrl", batch_sampler="no_duplicates")
    assert RECIPES["improved-pairs"].data == "entailment_pairs"
    assert RECIPES["improved-gist"].loss == "gist"
    assert RECIPES["improved-sampler"].batch_sampler == "batch_sampler"
    assert RECIPES["matryoshka"] == Recipe("triplets", "mnrl", "no_duplicates", matryoshka_dims=(384, 256, 128, 64))


@pytest.mark.parametrize("profile", ["CPU", "book", "tiny"])
def test_domain_arms_fine_tune_with_the_improved_recipe_and_its_settings(profile):
    raw = yaml.safe_load(PROFILES[profile].read_text())
    recipes, arm = raw["finetune"]["recipes"], raw["domain"]["finetune"]
    assert raw["domain"]["recipe"] == "improved"
    # CPU: the first 3,000 triplets (improved-rows), as the ablation; book and tiny: improved's own rows
    same = recipes["improved-rows" if profile == "CPU" else "improved"]
    assert {k: arm[k] for k in WEIGHT_SETTINGS} == {k: same[k] for k in WEIGHT_SETTINGS}
