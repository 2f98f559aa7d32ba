"""docs/pipeline.md is `dvc dag` of the committed dvc.yaml, and each method's dag reads like its chapter section.

The doc is rendered by scripts/dag_doc.py (one DVC process, the functions `dvc dag` calls); a stale doc fails
here with the command that rewrites it.
"""

from __future__ import annotations

import importlib.util
import re

import pytest
from conftest import ROOT

REGENERATE = "python scripts/dag_doc.py"


def _load_dag_doc():
    spec = importlib.util.spec_from_file_location("dag_doc", ROOT / "scripts" / "dag_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dag_doc = _load_dag_doc()


@pytest.fixture(scope="module")
def dags() -> dict[str, str]:
    return dag_doc.render_dags(ROOT)


def boxes(drawing: str) -> set[str]:
    """The stage names drawn as boxes in a `dvc dag` text drawing."""
    return set(re.findall(r"\| (\S+) \|", drawing))


def mermaid_edges(chart: str) -> set[tuple[str, str]]:
    names = dict(re.findall(r'^\t(node\d+)\["([^"]+)"\]$', chart, re.M))
    return {(names[a], names[b]) for a, b in re.findall(r"^\t(node\d+)-->(node\d+)$", chart, re.M)}


def test_pipeline_doc_is_current(dags):
    fresh = dag_doc.render(dags)
    committed = (ROOT / "docs" / "pipeline.md").read_text(encoding="utf-8")
    assert committed == fresh, f"docs/pipeline.md is not `dvc dag` of dvc.yaml any more: run `{REGENERATE}`"


def test_per_method_dags_fit_120_columns(dags):
    assert dag_doc.too_wide(dags) == []


@pytest.mark.parametrize(
    ("target", "stages"),
    [
        (
            "evaluate@augsbert",
            {"prepare", "base_models", "train_cross_encoder", "silver_pairs", "silver_label"}
            | {"train_augsbert@augsbert", "evaluate@augsbert"},
        ),
        ("evaluate@finetune-improved", {"prepare", "base_models", "finetune@improved", "evaluate@finetune-improved"}),
        (
            "evaluate_domain@domain-adapted",
            {"prepare", "base_models", "domain_corpus", "adapt_pretrain", "adapt_finetune@adapted"}
            | {"evaluate_domain@domain-adapted"},
        ),
        ("evaluate@scratch-mnrl", {"prepare", "base_models", "train_scratch@mnrl", "evaluate@scratch-mnrl"}),
    ],
)
def test_each_method_dag_is_its_chapter_section(dags, target, stages):
    """Exactly the stages of that method: nothing of another method leaks in (deps are per module)."""
    assert boxes(dags[f"dvc dag {target}"]) == stages


def test_the_collapsed_dag_tells_the_chapter(dags):
    edges = mermaid_edges(dags["dvc dag --md --collapse-foreach-matrix"])
    chapter = {
        ("prepare", "train_scratch"),
        ("prepare", "finetune"),
        ("train_scratch", "evaluate"),
        ("finetune", "evaluate"),
        ("prepare", "train_cross_encoder"),
        ("train_cross_encoder", "silver_label"),
        ("silver_pairs", "silver_label"),
        ("silver_label", "train_augsbert"),
        ("train_augsbert", "evaluate"),
        ("train_tsdae", "evaluate"),
        ("train_simcse", "evaluate"),
        ("train_ct", "evaluate"),
        ("domain_corpus", "adapt_pretrain"),
        ("adapt_pretrain", "adapt_finetune"),
        ("adapt_finetune", "evaluate_domain"),
        ("evaluate", "report"),
        ("evaluate_domain", "report"),
    }
    assert chapter - edges == set()
    assert not [edge for edge in edges if edge[0] in {"evaluate", "evaluate_domain", "report"} and edge[1] != "report"]
