"""Declared = used: every stage's ``deps`` and ``params`` in dvc.yaml are exactly what it runs and reads.

* Code, by static analysis: the stage's scripts and every ``embedlab`` module they import, following imports
  inside functions too, so code a profile only reaches on some settings (``batching.py`` under
  ``group_by_length``) counts. The declared ``.py`` deps must equal that set: a missing one means an edit is not
  rerun, an extra one reruns stages for nothing.
* Params, files and code, measured: the tiny pipeline runs with ``$EMBEDLAB_TRACE`` (``embedlab.trace``), which
  records each params key a stage reads, every file it opens and every project module it loads; each must be
  covered by a declared dep, and no key it reads may come from a schema default that params.yaml does not state.

Not counted as code deps: ``embedlab/warm.py`` (decides in which process a stage runs, never what it computes,
like ``dvc`` itself) and ``embedlab/trace.py`` (test instrumentation, imported only when tracing).
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

NOT_DEPS = {"src/embedlab/warm.py", "src/embedlab/trace.py"}


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]  # paths as written in dvc.yaml (interpolated)
    params: tuple[str, ...]  # dotted keys
    outs: tuple[str, ...] = ()


def dvc_stages(repo: Path = ROOT) -> list[Stage]:
    """Every stage of ``repo/dvc.yaml`` with foreach and ``${...}`` resolved, as DVC itself resolves them."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        out = []
        for stage in dvc.index.stages:
            params = [k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params]
            deps = [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)]
            outs = tuple(o.def_path for o in stage.outs)
            out.append(Stage(stage.name, stage.cmd, tuple(deps), tuple(params), outs))
        return out


def _module_file(module: str, root: Path) -> Path | None:
    base = root / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, root: Path) -> set[Path]:
    """Project files ``path`` imports anywhere in its body (functions too), packages' ``__init__`` included."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "embedlab" or name.startswith("embedlab."):
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__, ...
                    if (file := _module_file(".".join(parts[:i]), root)) is not None:
                        found.add(file)
    return found


def code_closure(scripts: list[str], root: Path = ROOT) -> set[str]:
    """The stage scripts plus every project module they import, transitively, minus :data:`NOT_DEPS`."""
    todo = [root / s for s in scripts]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += _imports(path, root) - seen
    return {p.relative_to(root).as_posix() for p in seen} - NOT_DEPS


def scripts_of(cmd: str) -> list[str]:
    """The project scripts a stage command runs: ``python stages/launch.py stages/x.py arg`` runs both."""
    return [w for w in cmd.split() if w.startswith("stages/") and w.endswith(".py")]


def code_problems(stage: Stage, root: Path = ROOT) -> list[str]:
    expected = code_closure(scripts_of(stage.cmd), root)
    declared = {d for d in stage.deps if d.endswith(".py") and d.startswith(("src/", "stages/"))}
    return [f"{stage.name}: runs {f} but does not declare it" for f in sorted(expected - declared)] + [
        f"{stage.name}: declares {f} but never imports it" for f in sorted(declared - expected)
    ]


def covered(key: str, declared: tuple[str, ...]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def test_every_stage_declares_exactly_the_code_it_imports():
    stages = dvc_stages()
    assert len(stages) >= 41  # base_models, prepare, ..., report: the whole pipeline was resolved
    problems = [p for stage in stages for p in code_problems(stage)]
    assert problems == []


def test_the_check_fails_when_a_dep_or_param_is_removed():
    """Proof the checks can fail: drop one code dep, add one unused, drop a param a stage reads."""
    stage = next(s for s in dvc_stages() if s.name == "finetune@book")
    assert code_problems(stage) == []
    without = Stage(stage.name, stage.cmd, tuple(d for d in stage.deps if d != "src/embedlab/batching.py"), ())
    assert code_problems(without) == ["finetune@book: runs src/embedlab/batching.py but does not declare it"]
    extra = Stage(stage.name, stage.cmd, (*stage.deps, "src/embedlab/tsdae.py"), ())
    assert code_problems(extra) == ["finetune@book: declares src/embedlab/tsdae.py but never imports it"]
    assert covered("finetune.recipes.book.learning_rate", stage.params)
    assert not covered(
        "finetune.recipes.book.learning_rate", tuple(p for p in stage.params if p != "finetune.recipes.book")
    )
    assert not covered("launch.launcher", tuple(p for p in stage.params if p != "launch"))


def _explicit_problems(raw: object, full: object, path: str) -> list[str]:
    if isinstance(full, dict) and isinstance(raw, dict):
        missing = [f"{path}{k}" for k in full if k not in raw]
        return missing + [p for k in raw if k in full for p in _explicit_problems(raw[k], full[k], f"{path}{k}.")]
    return []


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/tiny.yaml", "profiles/book.yaml"])
def test_every_profile_states_every_key_the_schema_reads(profile):
    """A schema default is invisible to DVC: changing it in code would change results without a rerun."""
    from embedlab.params import _ParamsLoader, parse_params

    raw = yaml.load((ROOT / profile).read_text(encoding="utf-8"), Loader=_ParamsLoader)
    full = parse_params(raw, profile).model_dump(mode="python")
    assert _explicit_problems(raw, full, "") == []


# ------------------------------------------------------------------------------------------------------------
# Measured on the tiny pipeline (built once per session with $EMBEDLAB_TRACE, see conftest.tiny_repo)


def _traces(tiny_repo: Path) -> dict[str, dict]:
    folder = tiny_repo.parent / "trace"
    records = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return {r["stage"]: r for r in records if r.get("stage")}


def test_every_stage_declares_the_params_it_reads_and_params_yaml_states_them(tiny_repo):
    stages = {s.name: s for s in dvc_stages(tiny_repo)}
    traces = _traces(tiny_repo)
    assert set(traces) == set(stages)  # every stage ran (and was traced) in the session's pipeline
    problems = []
    for name, record in sorted(traces.items()):
        declared = stages[name].params
        problems += [f"{name}: reads {k} but does not declare it" for k in record["params"] if not covered(k, declared)]
        problems += [f"{name}: reads {k}, a schema default params.yaml does not state" for k in record["defaulted"]]
    assert problems == []


def test_every_file_and_module_a_stage_loads_is_declared(tiny_repo):
    stages = {s.name: s for s in dvc_stages(tiny_repo)}
    problems = []
    for name, record in sorted(_traces(tiny_repo).items()):
        stage = stages[name]
        static = code_closure(scripts_of(stage.cmd), tiny_repo)
        problems += [
            f"{name}: loaded {f}, which static analysis missed" for f in record["code"] if f not in static | NOT_DEPS
        ]
        roots = [os.path.normpath(tiny_repo / d) for d in (*stage.deps, *stage.outs)]  # outs: written, re-read
        for path in record["opened"]:
            full = os.path.normpath(tiny_repo / path)  # relative: inside the repo; absolute stays absolute
            if not any(full == r or full.startswith(r + os.sep) for r in roots):
                problems.append(f"{name}: read {path}, which is no declared dependency")
    assert problems == []
