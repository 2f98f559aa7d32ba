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
unreadable file stops the comparison here (exit 2) instead of silently shortening it. Revisions are checked with
``git rev-parse --verify`` first, since DVC answers a name it cannot resolve with no metrics rather than an error.
DVC's version is pinned by the lock files, and tests/test_compare.py runs this on branches of the tiny pipeline.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import EXIT_USER_ERROR, EmbedlabError
from embedlab.evaluation import CI_KEY, CI_METRIC, HEADLINE_SET

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
        low, high = entry.get(CI_LOW), entry.get(CI_HIGH)
        out[eval_set] = Score(
            metric, float(value), None if low is None else float(low), None if high is None else float(high)
        )
    return out


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
    """Whether the new score lies outside the old 95 % interval (False when the old one has none)."""
    if old.low is None or old.high is None:
        return False
    return not old.low <= new.value <= old.high


def change_cell(old: Score | None, new: Score | None) -> str:
    """``0.8617 → 0.8491 -0.0126*``: old, new, delta and the mark; ``0.7323 =`` unchanged; ``(new)`` / ``(gone)``."""
    if old is None and new is None:
        return "–"
    if old is None:
        return f"(new) {_fmt(new.value)}"
    if new is None:
        return f"{_fmt(old.value)} → (gone)"
    if old.value == new.value:  # unchanged, or only its interval changed (other bootstrap settings): show the new one
        return f"{_fmt(new.value)} =" if (old.low, old.high) == (new.low, new.high) else f"= {score_cell(new)}"
    mark = OUTSIDE if outside(old, new) else ""
    return f"{_fmt(old.value)} → {_fmt(new.value)} {_delta(new.value - old.value)}{mark}"


def _delta(delta: float) -> str:
    """``-0.0126``; a change below 0.00005 as ``+2e-05`` rather than a ``+0.0000`` that reads as none."""
    return f"{delta:+.4f}" if abs(delta) >= 0.00005 or not math.isfinite(delta) else f"{delta:+.0e}"


def table(header: list[str], rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """Left-aligned columns two spaces apart; columns past ``width`` continue in another block below."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    blocks: list[list[int]] = [[]]
    used = widths[0]
    for i in range(1, len(header)):
        if blocks[-1] and used + 2 + widths[i] > width:
            blocks.append([])
            used = widths[0]
        blocks[-1].append(i)
        used += 2 + widths[i]
    lines: list[str] = []
    for n, block in enumerate(blocks):
        if n:
            lines.append("")
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0])] + [row[i].ljust(widths[i]) for i in block]
            lines.append("  ".join(cells).rstrip())
    return lines


def _groups(models: dict[str, Headline]) -> list[tuple[list[str], str, list[str]]]:
    """Models measured on the same sets with the same metrics: (sets, metric title, models), largest group first."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for name, head in models.items():
        groups.setdefault(tuple((s, score.metric) for s, score in head.items()), []).append(name)
    return [
        ([s for s, _ in key], " / ".join(dict.fromkeys(metric for _, metric in key)), names)
        for key, names in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def render_show(models: dict[str, Headline], label: str) -> str:
    """The headline table(s) of one revision."""
    if not models:
        return f"{label}: no headline metrics (evaluate stages not run yet? `dvc repro`)\n"
    lines = []
    for sets, title, names in _groups(models):
        has_ci = any(models[n][s].low is not None for n in names for s in sets)
        if lines:
            lines.append("")
        lines += [f"{label}: {title}" + (" [95 % bootstrap CI]" if has_ci else ""), ""]
        lines += table(["model", *sets], [[n, *(score_cell(models[n][s]) for s in sets)] for n in names])
    return "\n".join(lines) + "\n"


Change = dict[str, tuple[Score | None, Score | None]]  # eval set -> (old, new), for one model


def diff_headlines(old: dict[str, Headline], new: dict[str, Headline]) -> dict[str, Change]:
    """``{model: {set: (old, new)}}`` for the models whose headline changed (new models first in the new order)."""
    out = {}
    for name in dict.fromkeys([*new, *old]):
        a, b = old.get(name, {}), new.get(name, {})
        if a != b:
            out[name] = {s: (a.get(s), b.get(s)) for s in dict.fromkeys([*b, *a])}
    return out


def render_diff(changes: dict[str, Change], old_label: str, new_label: str) -> str:
    """One row per changed model: old → new and delta per set, ``*`` outside the old 95 % interval."""
    head = f"headline changes {old_label} → {new_label}"
    if not changes:
        return f"{head}: no headline changed\n"
    lines = [f"{head}", f"(old → new delta; {OUTSIDE} = new score outside the old 95 % bootstrap CI)"]
    either = {n: {s: new or old for s, (old, new) in c.items()} for n, c in changes.items()}
    for sets, title, names in _groups(either):
        lines += ["", f"{title}:"]
        lines += table(["model", *sets], [[n, *(change_cell(*changes[n][s]) for s in sets)] for n in names])
    return "\n".join(lines) + "\n"


# --- experiments (`dvc exp show --csv`) -------------------------------------------------------------------------

EXP_META = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}
_METRIC_COLUMN = re.compile(r"(?P<path>[^:]+\.json):(?P<set>[^.]+)\.(?P<key>.+)")  # DVC prefixes a key by its file
_HASH = re.compile(r"[0-9a-f]{32}(\.dir)?")  # a dependency's md5: dvc exp show lists deps beside params


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


def render_exps(csv_text: str) -> str:
    """``dvc exp show --csv`` as one table: per experiment, the params that differ and each differing headline.

    DVC names every metric column after its file (``metrics/finetune-book.json:stsb_validation.spearman_cosine``,
    58 characters), so its own table cannot fit two experiments in 120 columns; here a row is (experiment, model),
    and a param is named by its shortest unambiguous suffix. Models and params equal in every row are left out,
    as are dependency hashes; rows without metrics yet (queued, failed) show ``–``.
    """
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    if not rows:
        return "no experiments (dvc exp show printed nothing)\n"
    labels = [r.get("Experiment") or r.get("rev") or "?" for r in rows]
    files: dict[str, dict[str, list[str]]] = {}  # path -> set -> columns
    others = []
    for col in rows[0]:
        match = _METRIC_COLUMN.fullmatch(col)
        if match:
            files.setdefault(match["path"], {}).setdefault(match["set"], []).append(col)
        elif col not in EXP_META:
            others.append(col)

    def headline_of(row: dict[str, str], path: str) -> Headline | None:
        data = {
            eval_set: {_METRIC_COLUMN.fullmatch(c)["key"]: _float_or_none(row[c]) for c in cols if row[c]}
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
    latest = {m: next(h for h in heads if h is not None) for m, heads in changed.items()}
    lines = [f"{title}: the params and headlines that differ"]
    for sets, title_metric, names in _groups(latest):
        lines += ["", f"{title_metric}:"]
        header = ["experiment", *(short[c] for c in params), "model", *sets]
        body = []
        for i, row in enumerate(rows):
            for name in names:
                head = changed[name][i] or {}
                body.append(
                    [labels[i], *(row[c] or "–" for c in params), name, *(score_cell(head.get(s)) for s in sets)]
                )
        lines += table(header, body)
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
            "name a branch, tag or commit (`git branch -a`, `git log --oneline`); "
            f"for an experiment, `dvc exp branch {rev} {rev}` first",
        )


def read_revisions(revs: list[str], root: str | Path = ".") -> dict[str, dict[str, Headline]]:
    """``{rev: {model: Headline}}``, each revision read by DVC (git tree + DVC cache, or the working tree)."""
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
        files = result.get("data", {})
        errors = {path: f["error"] for path, f in files.items() if "error" in f}
        if errors:
            shown_errors = "; ".join(f"{p} ({type(e).__name__}: {e})" for p, e in list(errors.items())[:3])
            more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
            raise EmbedlabError(f"at {rev}: cannot read {shown_errors}{more}", _FETCH_FIX)
        out[rev] = headlines({path: f.get("data") for path, f in files.items()})
    return out


_FETCH_FIX = (
    "a committed revision's metrics come from the DVC cache: `dvc pull` (or `dvc fetch --all-branches`); "
    "in the workspace, `dvc repro` the stages that write them"
)


def _label(rev: str, root: str | Path) -> str:
    if rev == WORKSPACE:
        return WORKSPACE
    proc = subprocess.run(["git", "rev-parse", "--short", rev], cwd=root, capture_output=True, text=True)
    sha = proc.stdout.strip()
    return f"{rev} ({sha})" if proc.returncode == 0 and sha and not sha.startswith(rev) else rev


def show(rev: str = WORKSPACE, root: str | Path = ".") -> str:
    return render_show(read_revisions([rev], root)[rev], _label(rev, root))


def diff(a_rev: str, b_rev: str = WORKSPACE, root: str | Path = ".") -> str:
    revs = read_revisions([a_rev, b_rev], root)
    return render_diff(diff_headlines(revs[a_rev], revs[b_rev]), _label(a_rev, root), _label(b_rev, root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedlab.compare", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_show = sub.add_parser("show", help="every model's headline at one revision")
    p_show.add_argument("rev", nargs="?", default=WORKSPACE, help="git revision (default: the workspace)")
    p_diff = sub.add_parser("diff", help="the models whose headline changed between two revisions")
    p_diff.add_argument("a_rev", help="the old git revision")
    p_diff.add_argument("b_rev", nargs="?", default=WORKSPACE, help="the new one (default: the workspace)")
    sub.add_parser("exps", help="`dvc exp show --csv` on stdin as a compact table (make exps)")
    parser.add_argument("-C", dest="root", default=".", help="the repository (default: the current folder)")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            text = show(args.rev, args.root)
        elif args.command == "diff":
            text = diff(args.a_rev, args.b_rev, args.root)
        else:
            text = render_exps(sys.stdin.read())
    except EmbedlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
