"""params.yaml and the profiles are written in DVC's own YAML style, and docs/params.md tells the truth about them.

``dvc exp run -S`` (and the file ``dvc exp apply`` restores) goes through ``dvc.utils.hydra.apply_overrides``, a
ruamel.yaml round trip that rewrites what it does not preserve (comments on lists, flow style, ``null``). A file
already in that style is a fixed point, so an experiment's diff is the one line it changed; these tests hold the
files to that, with DVC's own function and once with a real ``dvc exp run -S``.
"""

from __future__ import annotations

import difflib
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run, run_dvc, set_param
from ruamel.yaml import YAML

from embedlab.params import load_params

PROFILES = ["params.yaml", "profiles/tiny.yaml", "profiles/book.yaml"]
COLUMNS = {"CPU": "params.yaml", "book": "profiles/book.yaml", "tiny": "profiles/tiny.yaml"}
DOC = ROOT / "docs" / "params.md"


def load(text: str) -> dict:
    """YAML 1.2, as DVC and the stages (``params._ParamsLoader``) read params: ``2e-05`` is a float."""
    return YAML(typ="safe", pure=True).load(text)


def apply_overrides(path: Path, overrides: list[str]) -> None:
    from dvc.utils.hydra import apply_overrides as dvc_apply_overrides

    dvc_apply_overrides(str(path), overrides)


def changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def leaves(node: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every scalar or list (lists are values, as DVC params see them)."""
    out: dict[str, object] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out |= leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def another(value: object) -> tuple[str, object]:
    """A different value of the same kind, as a Hydra override string and as the value it parses to."""
    if isinstance(value, bool):
        return str(not value).lower(), not value
    if value is None:
        return "7", 7
    if isinstance(value, int):
        return str(value + 1), value + 1
    if isinstance(value, float):
        return repr(value + 0.5), value + 0.5
    return f"'{value}-x'", f"{value}-x"


def sample_keys(data: dict) -> list[str]:
    """One key per section (its last scalar: the line nearest the next section), plus a float and a null."""
    flat = {k: v for k, v in leaves(data).items() if not isinstance(v, list) and "/" not in k}
    last: dict[str, str] = {}
    for key in flat:
        last[key.split(".")[0]] = key
    return [*last.values(), "finetune.recipes.improved.learning_rate", "launch.rdzv_endpoint"]


@pytest.fixture(params=PROFILES)
def profile(request, tmp_path) -> tuple[str, Path]:
    """A copy of one profile as ``params.yaml`` in an empty folder, the way ``cp profiles/x.yaml params.yaml`` does."""
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / request.param, path)
    return request.param, path


def test_no_op_round_trip_is_byte_identical(profile):
    name, path = profile
    before = path.read_bytes()
    apply_overrides(path, [])
    assert path.read_bytes() == before, f"{name} is not in DVC's YAML style: `dvc exp run -S` would rewrite it"


def test_one_override_changes_exactly_one_line(profile):
    name, path = profile
    text = path.read_text(encoding="utf-8")
    data = load(text)
    keys = sample_keys(data)
    assert len(keys) >= 16  # every top-level section is sampled
    for key in keys:
        path.write_text(text, encoding="utf-8")
        old = leaves(data)[key]
        override, new = another(old)
        apply_overrides(path, [f"{key}={override}"])
        after = path.read_text(encoding="utf-8")
        diff = changed_lines(text, after)
        leaf = key.rsplit(".", 1)[-1]
        assert len(diff) == 2, f"{name}: -S {key}={override} changed more than its line:\n" + "\n".join(diff)
        assert diff[0].lstrip("-").strip().startswith(f"{leaf}:") and diff[1].lstrip("+").strip().startswith(f"{leaf}:")
        assert leaves(load(after)) == leaves(data) | {key: new}


def test_a_float_written_by_dvc_is_read_as_a_float_by_the_stages(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(path, ["finetune.recipes.improved.learning_rate=2e-5"])
    assert "      learning_rate: 2e-05" in path.read_text(encoding="utf-8").splitlines()
    assert load_params(path).finetune.recipes["improved"].learning_rate == 2e-5


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_keep_params_yaml_key_order_and_a_header(name):
    """Same keys in the same order (``diff params.yaml profiles/x.yaml`` shows values only); a header names the docs."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert header == lines[: len(header)] and "docs/params.md" in "\n".join(header)  # comments only on top
    assert not [line for line in lines[len(header) :] if " #" in line]
    text = "\n".join(lines)
    cpu = list(leaves(load((ROOT / "params.yaml").read_text(encoding="utf-8"))))
    keys = list(leaves(load(text)))
    assert [k for k in keys if k in cpu] == [k for k in cpu if k in keys]


def test_set_param_edits_like_dvc(tmp_path):
    """conftest.set_param: one line for a scalar, the key's block for a mapping; the file stays a DVC fixed point."""
    shutil.copy(ROOT / "profiles" / "tiny.yaml", tmp_path / "params.yaml")
    path = tmp_path / "params.yaml"
    text = path.read_text(encoding="utf-8")
    set_param(tmp_path, "finetune.recipes.book.learning_rate", 3.0e-5)
    set_param(tmp_path, "prepare.eval_max_pairs", None)
    assert changed_lines(text, path.read_text(encoding="utf-8")) == [
        "-  eval_max_pairs: 100",
        "+  eval_max_pairs:",
        "-      learning_rate: 5.0e-5",
        "+      learning_rate: 3.0e-05",
    ]
    models = {"baseline": {"model": "bert-base-uncasedd", "dep": "params.yaml"}}
    set_param(tmp_path, "evaluate.models", models)
    set_param(tmp_path, "evaluate.sets", ["stsb_validation"])
    after = path.read_text(encoding="utf-8")
    data = load(after)
    assert data["evaluate"]["models"] == models and data["evaluate"]["sets"] == ["stsb_validation"]
    assert data["finetune"]["recipes"]["book"]["learning_rate"] == 3.0e-5 and data["prepare"]["eval_max_pairs"] is None
    apply_overrides(path, [])
    assert path.read_text(encoding="utf-8") == after


def test_dvc_exp_run_set_param_is_a_one_line_diff(tmp_path):
    """The real thing, in a throwaway git+DVC repo with one trivial stage that reads one param (seconds)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    key = "finetune.recipes.improved.learning_rate"
    (repo / "dvc.yaml").write_text(
        f"stages:\n  lr:\n    cmd: {sys.executable} -c \"open('lr.txt', 'w').write('ok')\"\n"
        f"    params:\n    - {key}\n    outs:\n    - lr.txt\n",
        encoding="utf-8",
    )
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "config", "user.email", "tests@embedlab"], repo)
    run(["git", "config", "user.name", "embedlab tests"], repo)
    run_dvc(repo, "init", "-q")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    run_dvc(repo, "exp", "run", "-q", "-S", f"{key}=2e-5")
    diff = run(["git", "diff", "-U0", "params.yaml"], repo).stdout.splitlines()
    assert [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))] == [
        "-      learning_rate: 1.0e-5",
        "+      learning_rate: 2e-05",
    ]


# docs/params.md: one section per top-level key, a row for every key, every value shown = the file's


def doc_sections() -> dict[str, list[list[str]]]:
    """Top-level key -> the rows (cells) of its table, from the ``## `key` `` sections of docs/params.md."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            match = re.fullmatch(r"## `(\w+)`", line)
            current = sections.setdefault(match.group(1), []) if match else None
        elif current is not None and line.startswith("| `"):
            current.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return sections


def key_pattern(section: str, key: str, data: dict) -> re.Pattern[str]:
    """A row's key (relative, with ``*`` and ``{a,b}``) as a pattern over the dotted keys of the profile."""
    if key == section and not isinstance(data.get(section), dict):
        return re.compile(re.escape(section))

    def part(text: str) -> str:
        if text == "*":
            return "[^.]+"
        if text.startswith("{"):
            return "(?:" + "|".join(map(re.escape, text[1:-1].split(","))) + ")"
        return re.escape(text)

    parts = [part(text) for text in re.split(r"\.(?![^{]*\})", key)]  # dots outside {a,b}
    return re.compile(re.escape(section) + r"\." + r"\.".join(parts))


def test_params_doc_has_a_section_per_top_level_key():
    from embedlab.params import Params

    sections = doc_sections()
    for name in PROFILES:
        assert list(sections) == list(load((ROOT / name).read_text(encoding="utf-8"))), name
    assert set(sections) == set(Params.model_fields)


@pytest.mark.parametrize("column", list(COLUMNS))
def test_params_doc_values_are_the_files_and_cover_every_key(column):
    data = load((ROOT / COLUMNS[column]).read_text(encoding="utf-8"))
    flat = leaves(data)
    index = ["CPU", "book", "tiny"].index(column) + 1
    covered: set[str] = set()
    wrong = []
    for section, rows in doc_sections().items():
        for row in rows:
            key, cell = row[0].strip("`"), row[index]
            pattern = key_pattern(section, key, data)
            matched = [k for k in flat if pattern.fullmatch(k)]
            covered.update(matched)
            if cell == "—":
                wrong += [f"{section}: {key} is documented as absent but the file has it"] if matched else []
            elif re.fullmatch(r"`[^`]*`", cell):
                expected = load(cell.strip("`"))
                if not matched:
                    wrong.append(f"{section}: {key} matches no key of {COLUMNS[column]}")
                wrong += [f"{k} = {flat[k]!r}, docs/params.md: {expected!r}" for k in matched if flat[k] != expected]
    assert not wrong, "\n".join(wrong)
    assert set(flat) - covered == set(), f"keys of {COLUMNS[column]} without a row in docs/params.md"
