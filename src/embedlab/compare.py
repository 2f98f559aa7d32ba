"""Compare at a glance (``python -m embedlab.compare``): each model's headline, and what changed between revisions.

* ``show [REV]``: one row per model (evaluate@* and evaluate_domain@*), one column per evaluation set, each cell
  the score with its 95 % bootstrap interval; models measured on other sets (Twitter) get their own table.
* ``diff A [B]`` (B: the workspace): one row per model whose headline changed, old → new and the delta per set,
  ``*`` where the new score lies outside the old 95 % interval. Unchanged models are not listed.

Only headline-shaped metrics files count (``{set: {metric: x[, "ci95_low": lo, "ci95_high": hi]}}``, what the
evaluate stages write), so timings and training statistics never show up here, and every line fits 120 columns.

The metrics come from DVC's Python API, ``Repo.metrics.show(revs=[A, B], hide_workspace=False)``, which is also
what ``dvc metrics diff`` calls. Not the CLI: ``dvc metrics show`` has no revision argument, and ``dvc metrics diff
--json`` leaves out unchanged values (the old interval a new score is judged against) and prints ``{}`` with exit
status 0 when it cannot read a revision. Not ``dvc.api.metrics_show``: it merges every file's keys into one dict,
so which model a number belongs to is lost. The API gives each file's data or its error per revision, so an
unreadable file stops the comparison here (exit 2) instead of silently shortening it; only a file missing from the
workspace (a model not reproduced yet) is "not measured yet", listed under the table. Revisions are checked with
``git rev-parse --verify`` first, since DVC answers a name it cannot resolve with no metrics rather than an error.
DVC's version is pinned by the lock files, and tests/test_compare.py runs this on branches of the tiny pipeline.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import EXIT_USER_ERROR, EmbedlabError
from embedlab.evaluation import HEADLINE_SET
from embedlab.stats import CI_KEY, CI_METRIC

WIDTH = 120  # the longest line either table may print
WORKSPACE = "workspace"  # DVC's name for the working tree
CI_LOW, CI_HIGH = "ci95_low", "ci95_high"
OUTSIDE = "*"  # marks a new score outside the old 95 % interval
DIGITS = 6  # the stages round headline numbers to 6 decimals (stages/evaluate.py, stages/evaluate_domain.py)


@dataclass(frozen=True)
class Score:
    """One headline number: a metric on one evaluation set, with its 95 % bootstrap interval when there is one."""

    metric: str
    value: float
    low: float | None = None
    high: float | None = None


Headline = dict[str, Score]  # eval set -> score, for one model


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_headline(data: Any) -> Headline | None:
    """A metrics file's ``{set: Score}``, or None when it is not headline-shaped (training stats, timings...).

    Headline-shaped: every top-level value is ``{metric: number}`` with exactly one metric, plus optionally
    ``ci95_low``/``ci95_high``.
    """
    if not isinstance(data, dict) or not data:
        return None
    out = {}
    for eval_set, entry in data.items():
        if not isinstance(entry, dict):
            return None
        metrics = {k: v for k, v in entry.items() if k not in (CI_LOW, CI_HIGH)}
        if len(metrics) != 1 or not all(_number(v) for v in entry.values()):
            return None
        ((metric, value),) = metrics.items()
        out[eval_set] = Score(metric, float(value), _bound(entry.get(CI_LOW)), _bound(entry.get(CI_HIGH)))
    return out


def _bound(value: float | None) -> float | None:
    """A CI bound as a float, or None when absent or not finite (no interval rather than ``[nan, nan]``)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _same(a: float | None, b: float | None) -> bool:
    """Equal numbers, NaN counting as equal to NaN (a score that could not be computed, in both revisions)."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def same_score(a: Score | None, b: Score | None) -> bool:
    """Whether two scores are the same (metric, value and interval), NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    return a.metric == b.metric and all(_same(x, y) for x, y in ((a.value, b.value), (a.low, b.low), (a.high, b.high)))


def legacy_headline(data: Any) -> Headline | None:
    """A metrics file from before the headline split, read as its headline (rounded as the stages now round it).

    Then ``metrics/<model>.json`` held the book's keys (STS-B validation at top level, other sets nested, ``ci95``)
    and ``metrics/twitter-<variant>.json`` held ``<set>_ap``; reading them alike lets ``diff`` compare a revision
    from before the split with one after it, model by model, instead of listing every model as new.
    """
    if not isinstance(data, dict):
        return None
    if _number(data.get(CI_METRIC)):
        sets = {HEADLINE_SET: data, **{k: v for k, v in data.items() if isinstance(v, dict) and CI_METRIC in v}}
        out = {}
        for eval_set, values in sets.items():
            row = {CI_METRIC: round(values[CI_METRIC], DIGITS)}
            ci = data.get(CI_KEY, {}).get(eval_set, {}).get(CI_METRIC, {})
            for bound in ("low", "high"):
                if _number(ci.get(bound)) and math.isfinite(ci[bound]):
                    row[f"ci95_{bound}"] = round(ci[bound], DIGITS)
            out[eval_set] = row
        return parse_headline(out)
    if data and all(k.endswith("_ap") and _number(v) for k, v in data.items()):
        return parse_headline({k.removesuffix("_ap"): {"average_precision": round(v, DIGITS)} for k, v in data.items()})
    return None


def model_name(path: str) -> str:
    """``metrics/finetune-book.json`` -> ``finetune-book`` (the evaluate.models key or twitter-<variant>)."""
    return path.replace("\\", "/").removeprefix("metrics/").removesuffix(".json")


def headlines(files: dict[str, Any]) -> dict[str, Headline]:
    """``{model: Headline}`` of the headline-shaped files among ``{path: data}``, in the given order."""
    out = {}
    for path, data in files.items():
        parsed = parse_headline(data) or legacy_headline(data)
        if parsed is not None:
            out[model_name(path)] = parsed
    return out


# --- formatting ------------------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "nan"


def score_cell(score: Score | None) -> str:
    """``0.8672 [0.852, 0.882]``, or the bare score without an interval, or ``–`` when not measured."""
    if score is None:
        return "–"
    if score.low is None or score.high is None:
        return _fmt(score.value)
    return f"{_fmt(score.value)} [{score.low:.3f}, {score.high:.3f}]"


def outside(old: Score, new: Score) -> bool:
    """Whether the new score lies outside the old 95 % interval (False when the old one has none, or new is NaN)."""
    if old.low is None or old.high is None or not math.isfinite(new.value):
        return False
    return not old.low <= new.value <= old.high


def change_cell(old: Score | None, new: Score | None, measured: bool = True) -> str:
    """``0.8617 → 0.8491 -0.0126*``: old, new, delta and the mark; ``0.7323 =`` unchanged; ``(new)`` / ``(gone)``.

    ``measured=False``: the model's file is missing on one side (workspace not reproduced yet): ``–`` for that side.
    """
    if old is None and new is None:
        return "–"
    if old is None:
        return f"(new) {_fmt(new.value)}" if measured else f"– → {_fmt(new.value)}"
    if new is None:
        return f"{_fmt(old.value)} → " + ("(gone)" if measured else "–")
    if _same(old.value, new.value):  # unchanged, or only its interval changed (other bootstrap settings): show the new
        return (
            f"{_fmt(new.value)} =" if _same(old.low, new.low) and _same(old.high, new.high) else f"= {score_cell(new)}"
        )
    mark = OUTSIDE if outside(old, new) else ""
    return f"{_fmt(old.value)} → {_fmt(new.value)} {_delta(new.value - old.value)}{mark}"


def _delta(delta: float) -> str:
    """``-0.0126``; a change below 0.00005 as ``+2e-05`` rather than a ``+0.0000`` that reads as none."""
    return f"{delta:+.4f}" if abs(delta) >= 0.00005 or not math.isfinite(delta) else f"{delta:+.0e}"


def table(header: list[str], rows: list[list[str]], width: int = WIDTH, keys: tuple[int, ...] = (0,)) -> list[str]:
    """Left-aligned columns two spaces apart; columns past ``width`` continue in another block below.

    ``keys``: the columns that name a row (model; experiment and model), in every block, so that a row of a lower
    block still says whose it is. Each block keeps the columns' order.
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    key_cols = sorted(set(keys))
    base = sum(widths[i] for i in key_cols) + 2 * (len(key_cols) - 1)
    blocks: list[list[int]] = [[]]
    used = base
    for i in range(len(header)):
        if i in key_cols:
            continue
        if blocks[-1] and used + 2 + widths[i] > width:
            blocks.append([])
            used = base
        blocks[-1].append(i)
        used += 2 + widths[i]
    lines: list[str] = []
    for n, block in enumerate(blocks):
        if n:
            lines.append("")
        columns = sorted([*key_cols, *block])
        for row in [header, *rows]:
            lines.append("  ".join(row[i].ljust(widths[i]) for i in columns).rstrip())
    return lines


def shorten(text: str, limit: int = 30) -> str:
    """``text`` cut in the middle to ``limit`` characters (``data.local_dir=/home/…/shared/data``)."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return f"{text[: (keep + 1) // 2]}…{text[len(text) - keep // 2 :]}"


def _groups(models: dict[str, Headline]) -> list[tuple[list[str], str, list[str]]]:
    """Models measured on the same sets with the same metrics: (sets, metric title, models), largest group first."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for name, head in models.items():
        groups.setdefault(tuple((s, score.metric) for s, score in head.items()), []).append(name)
    return [
        ([s for s, _ in key], " / ".join(dict.fromkeys(metric for _, metric in key)), names)
        for key, names in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def not_measured_lines(names: list[str]) -> list[str]:
    """Under a table: the models whose metrics file the workspace lacks (a new model, or a repro under way)."""
    if not names:
        return []
    text = f"not measured yet: {', '.join(names)} (`dvc repro` writes them)"
    return ["", *textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)]


def render_show(models: dict[str, Headline], label: str, unmeasured: list[str] | None = None) -> str:
    """The headline table(s) of one revision; ``unmeasured``: models whose metrics file is missing (workspace)."""
    after = not_measured_lines(unmeasured or [])
    if not models:
        return "\n".join([f"{label}: no headline metrics (evaluate stages not run yet? `dvc repro`)", *after]) + "\n"
    lines = []
    for sets, title, names in _groups(models):
        has_ci = any(models[n][s].low is not None for n in names for s in sets)
        if lines:
            lines.append("")
        lines += [f"{label}: {title}" + (" [95 % bootstrap CI]" if has_ci else ""), ""]
        lines += table(["model", *sets], [[n, *(score_cell(models[n][s]) for s in sets)] for n in names])
    return "\n".join(lines + after) + "\n"


Change = dict[str, tuple[Score | None, Score | None]]  # eval set -> (old, new), for one model


def diff_headlines(old: dict[str, Headline], new: dict[str, Headline]) -> dict[str, Change]:
    """``{model: {set: (old, new)}}`` for the models whose headline changed (new models first in the new order)."""
    out = {}
    for name in dict.fromkeys([*new, *old]):
        a, b = old.get(name, {}), new.get(name, {})
        if a.keys() != b.keys() or not all(same_score(a[s], b[s]) for s in a):
            out[name] = {s: (a.get(s), b.get(s)) for s in dict.fromkeys([*b, *a])}
    return out


def render_diff(changes: dict[str, Change], old_label: str, new_label: str, unmeasured: list[str] | None = None) -> str:
    """One row per changed model: old → new and delta per set, ``*`` outside the old 95 % interval.

    ``unmeasured``: models whose metrics file one side lacks (the workspace before `dvc repro`): ``–`` on that
    side rather than ``(gone)``/``(new)``, and listed under the table.
    """
    head = f"headline changes {old_label} → {new_label}"
    unmeasured = unmeasured or []
    after = not_measured_lines(unmeasured)
    if not changes:
        return "\n".join([f"{head}: no headline changed", *after]) + "\n"
    lines = [f"{head}", f"(old → new delta; {OUTSIDE} = new score outside the old 95 % bootstrap CI)"]
    either = {n: {s: new or old for s, (old, new) in c.items()} for n, c in changes.items()}
    for sets, title, names in _groups(either):
        lines += ["", f"{title}:"]
        lines += table(
            ["model", *sets],
            [[n, *(change_cell(*changes[n][s], measured=n not in unmeasured) for s in sets)] for n in names],
        )
    return "\n".join(lines + after) + "\n"


# --- experiments (`dvc exp show --csv`) -------------------------------------------------------------------------

EXP_META = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}
_METRIC_COLUMN = re.compile(r"(?P<path>[^:]+\.json):(?P<set>[^.]+)\.(?P<key>.+)")  # DVC prefixes a key by its file
# ... but only when another file has the same key: one model's file gives `stsb_validation.spearman_cosine`
_BARE_METRIC = re.compile(r"(?P<set>[^.:]+)\.(?P<key>spearman_cosine|ci95_low|ci95_high|average_precision)")
_HASH = re.compile(r"[0-9a-f]{32}(\.dir)?")  # a dependency's md5: dvc exp show lists deps beside params
SET_ORDER = ("stsb_validation", "stsb_test", "sickr")  # params.yaml evaluate.sets: these columns first, in this order
VALUE_WIDTH = 30  # a param's name or value longer than this is cut in the middle (data.local_dir=/abs/path)


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _short_names(keys: list[str]) -> dict[str, str]:
    """Each dotted key's shortest suffix that no other key ends with (``book.learning_rate``)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            short = ".".join(parts[-n:])
            if not any(k != key and (k == short or k.endswith("." + short)) for k in keys):
                break
        out[key] = short
    return out


def _bare_owner(eval_set: str, named: set[str], metrics_files: dict[str, Headline | None]) -> str:
    """The metrics file of an unprefixed column ``<eval_set>.<metric>``: the only file DVC did not name that holds
    ``eval_set`` (its workspace data), else the only file it did not name at all; one ``error:`` line otherwise."""
    candidates = {path: head for path, head in metrics_files.items() if path not in named}
    holding = [path for path, head in candidates.items() if head is not None and eval_set in head]
    if len(holding) == 1:
        return holding[0]
    if len(candidates) == 1:
        return next(iter(candidates))
    where = f"{len(candidates)} metrics files could hold it" if candidates else "no metrics file to name it by"
    raise EmbedlabError(f"`dvc exp show` column {eval_set}.* names no file, and {where} (-C the DVC repo?)")


def _union_sets(heads: list[Headline | None]) -> Headline:
    """Every set any row has (its first score, for the metric), evaluate.sets first: columns no row lacks."""
    merged: Headline = {}
    for head in heads:
        for eval_set, score in (head or {}).items():
            merged.setdefault(eval_set, score)
    rank = {s: i for i, s in enumerate(SET_ORDER)}
    return {s: merged[s] for s in sorted(merged, key=lambda s: rank.get(s, len(rank)))}


def render_exps(csv_text: str, metrics_files: Callable[[], dict[str, Headline | None]] = dict) -> str:
    """``dvc exp show --csv`` as one table: per experiment, the params that differ and each differing headline.

    DVC names every metric column after its file (``metrics/finetune-book.json:stsb_validation.spearman_cosine``,
    58 characters), so its own table cannot fit two experiments in 120 columns; here a row is (experiment, model),
    and a param is named by its shortest unambiguous suffix. Models and params equal in every row are left out,
    as are dependency hashes; rows without metrics yet (queued, failed) show ``–``. DVC leaves the file out of a
    column name when no other file has that key (one model evaluated): ``metrics_files()``, ``{path: workspace
    headline}`` of the repository's metrics files, then says whose it is.
    """
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    if not rows:
        return "no experiments (dvc exp show printed nothing)\n"
    labels = [r.get("Experiment") or r.get("rev") or "?" for r in rows]
    files: dict[str, dict[str, list[tuple[str, str]]]] = {}  # path -> set -> (column, key)
    bare: dict[str, list[tuple[str, str]]] = {}  # set -> (column, key), for the columns DVC did not prefix
    others = []
    for col in rows[0]:
        if match := _METRIC_COLUMN.fullmatch(col):
            files.setdefault(match["path"], {}).setdefault(match["set"], []).append((col, match["key"]))
        elif col in EXP_META:
            continue
        elif match := _BARE_METRIC.fullmatch(col):
            bare.setdefault(match["set"], []).append((col, match["key"]))
        else:
            others.append(col)
    if bare:
        known, named = metrics_files(), set(files)
        for eval_set, cols in bare.items():
            files.setdefault(_bare_owner(eval_set, named, known), {}).setdefault(eval_set, []).extend(cols)

    def headline_of(row: dict[str, str], path: str) -> Headline | None:
        data = {
            eval_set: {key: _float_or_none(row[c]) for c, key in cols if row[c]}
            for eval_set, cols in files[path].items()
        }
        return parse_headline({k: v for k, v in data.items() if v})

    per_model = {model_name(path): [headline_of(r, path) for r in rows] for path in files}
    changed = {m: heads for m, heads in per_model.items() if len({repr(h) for h in heads if h is not None}) > 1}
    params = [
        c for c in others if len({r[c] for r in rows}) > 1 and not all(_HASH.fullmatch(r[c]) for r in rows if r[c])
    ]
    title = f"{len(rows)} rows of dvc exp show"
    if not changed:
        return f"{title}: no headline differs\n"
    short = _short_names(others)  # unambiguous among all params, not only the changed ones
    every_set = {m: _union_sets(heads) for m, heads in changed.items()}
    lines = [f"{title}: the params and headlines that differ"]
    for sets, title_metric, names in _groups(every_set):
        lines += ["", f"{title_metric}:"]
        header = ["experiment", *(shorten(short[c], VALUE_WIDTH) for c in params), "model", *sets]
        body = []
        for i, row in enumerate(rows):
            for name in names:
                head = changed[name][i] or {}
                values = [shorten(row[c], VALUE_WIDTH) or "–" for c in params]
                body.append([labels[i], *values, name, *(score_cell(head.get(s)) for s in sets)])
        lines += table(header, body, keys=(0, 1 + len(params)))  # experiment and model in every block
    return "\n".join(lines) + "\n"


# --- reading revisions through DVC --------------------------------------------------------------------------------


def check_revision(rev: str, root: str | Path = ".") -> None:
    """Fail with one clear message on a revision git cannot resolve (DVC would skip it and report no change)."""
    if rev == WORKSPACE:
        return
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=root, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise EmbedlabError(
            f"unknown revision {rev!r}: git rev-parse --verify finds no commit by that name in {Path(root).resolve()}",
            unknown_revision_fix(rev),
        )


def unknown_revision_fix(rev: str) -> str:
    """The fix line (``  fix: `` and this, at most 120 columns): ``NAME`` for a name too long to repeat twice."""
    text = "name a branch, tag or commit (`git branch -a`); an experiment: `dvc exp branch {0} {0}` first"
    fix = text.format(rev)
    return fix if len("  fix: " + fix) <= WIDTH else text.format("NAME")


@dataclass
class Revision:
    """One revision's headlines, and the models whose metrics file the workspace lacks (not measured yet)."""

    models: dict[str, Headline]
    unmeasured: list[str]


def measured_files(rev: str, files: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """``({path: data}, [missing paths])`` from DVC's ``{path: {"data": ...} | {"error": exc}}`` for one revision.

    In the workspace a missing file is not measured yet (a model added but not reproduced, or a repro under way);
    any other error, and any error at a committed revision (its metrics must be in git or the DVC cache), stops here.
    """
    data, missing, errors = {}, [], {}
    for path, result in files.items():
        if "error" not in result:
            data[path] = result.get("data")
        elif rev == WORKSPACE and isinstance(result["error"], FileNotFoundError):
            missing.append(path)
        else:
            errors[path] = result["error"]
    if errors:
        raise EmbedlabError(cannot_read(rev, errors), _FETCH_FIX)
    return data, missing


def cannot_read(rev: str, errors: dict[str, Exception]) -> str:
    """``at main: cannot read metrics/x.json (FileNotFoundError: ...) and 2 more``: 120 columns after ``error: ``."""
    (path, err), *rest = errors.items()
    more = f" and {len(rest)} more" if rest else ""
    head = f"at {rev}: cannot read {path} ({type(err).__name__}: "
    room = WIDTH - len("error: ") - len(head) - len(f"){more}")
    return f"{head}{shorten(str(err), max(room, 10))}){more}"


def read_revisions(revs: list[str], root: str | Path = ".") -> dict[str, Revision]:
    """``{rev: Revision}``, each revision read by DVC (git tree + DVC cache, or the working tree)."""
    for rev in revs:
        check_revision(rev, root)
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            shown = repo.metrics.show(revs=list(dict.fromkeys(revs)), hide_workspace=False, on_error="return")
    except DvcException as err:
        raise EmbedlabError(f"DVC: {err}", "run this in the DVC repository (or pass -C REPO)") from None
    out = {}
    for rev in revs:
        # DVC names a revision by every name that resolved to its commit, joined with ","
        key = rev if rev in shown else next((k for k in shown if rev in k.split(",")), None)
        result = shown.get(key) if key is not None else None
        if result is None:
            raise EmbedlabError(f"DVC returned no metrics for revision {rev!r}", "check `dvc metrics diff` by hand")
        if "error" in result:
            raise EmbedlabError(f"DVC cannot read revision {rev!r}: {result['error']}", _FETCH_FIX)
        data, missing = measured_files(rev, result.get("data", {}))
        out[rev] = Revision(headlines(data), [model_name(path) for path in missing])
    return out


_FETCH_FIX = (
    "committed metrics come from the DVC cache: `dvc pull` (or `dvc fetch --all-branches`); workspace: `dvc repro`"
)


def workspace_metrics(root: str | Path = ".") -> dict[str, Headline | None]:
    """``{path: headline or None}`` of the metrics files dvc.yaml declares, read in the workspace (``{}`` if DVC
    cannot tell): what names a ``dvc exp show`` metric column that DVC left unprefixed."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            files = repo.metrics.show(revs=[WORKSPACE], hide_workspace=False, on_error="return")
    except DvcException:
        return {}
    data = files.get(WORKSPACE, {}).get("data", {})
    return {path.replace("\\", "/"): headlines({path: f.get("data")}).get(model_name(path)) for path, f in data.items()}


def _label(rev: str, root: str | Path) -> str:
    if rev == WORKSPACE:
        return WORKSPACE
    proc = subprocess.run(["git", "rev-parse", "--short", rev], cwd=root, capture_output=True, text=True)
    sha = proc.stdout.strip()
    return f"{rev} ({sha})" if proc.returncode == 0 and sha and not sha.startswith(rev) else rev


def show(rev: str = WORKSPACE, root: str | Path = ".") -> str:
    revision = read_revisions([rev], root)[rev]
    return render_show(revision.models, _label(rev, root), revision.unmeasured)


def diff(a_rev: str, b_rev: str = WORKSPACE, root: str | Path = ".") -> str:
    revs = read_revisions([a_rev, b_rev], root)
    old, new = revs[a_rev], revs[b_rev]
    unmeasured = list(dict.fromkeys([*new.unmeasured, *old.unmeasured]))
    changes = diff_headlines(old.models, new.models)
    return render_diff(changes, _label(a_rev, root), _label(b_rev, root), unmeasured)


def parser() -> argparse.ArgumentParser:
    """``-C REPO`` before or after the subcommand (``compare -C repo show`` and ``compare show -C repo``)."""
    repo = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand without -C keeps the value given before it (argparse copies a subparser's defaults)
    repo.add_argument("-C", dest="root", default=argparse.SUPPRESS, help="the repository (default: the current folder)")
    out = argparse.ArgumentParser(prog="python -m embedlab.compare", description=__doc__.split("\n\n")[0])
    out.add_argument("-C", dest="root", default=".", help="the repository (default: the current folder)")
    sub = out.add_subparsers(dest="command", required=True)
    p_show = sub.add_parser("show", parents=[repo], help="every model's headline at one revision")
    p_show.add_argument("rev", nargs="?", default=WORKSPACE, help="git revision (default: the workspace)")
    p_diff = sub.add_parser("diff", parents=[repo], help="the models whose headline changed between two revisions")
    p_diff.add_argument("a_rev", help="the old git revision")
    p_diff.add_argument("b_rev", nargs="?", default=WORKSPACE, help="the new one (default: the workspace)")
    sub.add_parser("exps", parents=[repo], help="`dvc exp show --csv` on stdin as a compact table (make exps)")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "show":
            text = show(args.rev, args.root)
        elif args.command == "diff":
            text = diff(args.a_rev, args.b_rev, args.root)
        else:
            text = render_exps(sys.stdin.read(), lambda: workspace_metrics(args.root))
    except EmbedlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
