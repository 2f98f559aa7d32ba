"""Write docs/pipeline.md: the pipeline as `dvc dag` draws it, so the picture in the docs is the one in dvc.yaml.

The whole pipeline is `dvc dag --md --collapse-foreach-matrix` (one node per stage definition, the chapter at a
glance) and `dvc dag --md` (every stage); each method is `dvc dag <its last stage>` as text. One DVC process
renders them all with the functions `dvc dag` itself calls (`dvc.commands.dag`), in seconds instead of a DVC
start-up per diagram. tests/test_dag.py fails when the committed file differs from a fresh render.

Usage, from the repository root: ``python scripts/dag_doc.py`` (rewrite) or ``python scripts/dag_doc.py --check``.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "pipeline.md"
REGENERATE = "python scripts/dag_doc.py"
MAX_WIDTH = 120  # a per-method dag wider than this wraps in a terminal and in the docs

# (target, what it shows): one per method family of the chapter
METHODS: tuple[tuple[str, str], ...] = (
    ("evaluate@augsbert", "Augmented SBERT (10.5.2): cross-encoder on gold, silver pairs, silver labels, bi-encoder"),
    ("evaluate@finetune-improved", "supervised fine-tuning of all-MiniLM-L6-v2, improved recipe (10.5.1)"),
    ("evaluate_domain@domain-adapted", "domain adaptation (10.6.2): TSDAE on tweets, then NLI fine-tuning"),
    ("evaluate@scratch-mnrl", "training from scratch with MultipleNegativesRankingLoss (10.4)"),
)


def render_dags(root: Path = ROOT) -> dict[str, str]:
    """Each diagram of the doc, keyed by the `dvc dag` command line that prints it (trailing spaces stripped)."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.commands.dag import _build, _show_ascii, _show_mermaid
    from dvc.repo import Repo

    def text(drawing: str) -> str:
        return "\n".join(line.rstrip() for line in drawing.splitlines())

    with Repo(str(root)) as repo:
        dags = {
            "dvc dag --md --collapse-foreach-matrix": _show_mermaid(_build(repo, collapse_foreach_matrix=True), True),
            "dvc dag --md": _show_mermaid(_build(repo), True),
        }
        for target, _ in METHODS:
            dags[f"dvc dag {target}"] = text(_show_ascii(_build(repo, target=target)))
    return {command: dag.strip("\n") for command, dag in dags.items()}


def too_wide(dags: dict[str, str]) -> list[str]:
    """Lines of the per-method text dags wider than MAX_WIDTH, as 'command: width'."""
    return [
        f"{command}: {width} columns"
        for command, dag in dags.items()
        if "--md" not in command and (width := max(map(len, dag.splitlines()))) > MAX_WIDTH
    ]


def render(dags: dict[str, str]) -> str:
    """docs/pipeline.md around the diagrams of :func:`render_dags`."""
    parts = [
        "# The pipeline",
        "",
        f"Generated from `dvc.yaml` by `{REGENERATE}` (do not edit by hand; `tests/test_dag.py` checks it is",
        "current). Every box is a DVC stage; an arrow runs from a stage to one that depends on its outputs. In a",
        "terminal, `dvc dag <stage>` draws what a stage depends on, `dvc dag --full <stage>` its whole pipeline.",
        "",
        "## The chapter at a glance",
        "",
        "One node per stage definition (`foreach` stages collapsed: `evaluate` stands for `evaluate@baseline`,",
        "`evaluate@augsbert`, ...).",
        "",
        "`dvc dag --md --collapse-foreach-matrix`:",
        "",
        dags["dvc dag --md --collapse-foreach-matrix"],
        "",
        "## Every stage",
        "",
        "`dvc dag --md`:",
        "",
        dags["dvc dag --md"],
        "",
        "## One method at a time",
        "",
        "Each method's last stage and everything it depends on, as `dvc dag <stage>` prints it.",
    ]
    for target, what in METHODS:
        parts += ["", f"### {target}", "", f"{what}.", "", "```text", f"$ dvc dag {target}"]
        parts += [dags[f"dvc dag {target}"], "```"]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/pipeline.md is not current")
    args = parser.parse_args(argv)
    fresh = render(render_dags())
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != fresh:
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), str(DOC)))
            print(f"\n{DOC.relative_to(ROOT)} is stale: run `{REGENERATE}`")
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
