"""Params schema and model resolution: clear errors before any long work."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from embedlab import models
from embedlab.errors import EmbedlabError, ParamsError
from embedlab.params import load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/book.yaml", "profiles/tiny.yaml"])
def test_every_profile_validates(profile):
    p = load_params(ROOT / profile)
    assert p.evaluate.models["baseline"].model == models.MINILM


def test_profiles_have_the_same_sections_and_settings():
    """Every profile sets the same sections and top-level settings; values (and optional caps) may differ."""

    def keys(raw: dict) -> set[str]:
        return {f"{section}.{key}" for section, body in raw.items() if isinstance(body, dict) for key in body} | set(
            raw
        )

    cpu = keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for other in ("profiles/book.yaml", "profiles/tiny.yaml"):
        assert keys(yaml.safe_load((ROOT / other).read_text())) == cpu, other


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
