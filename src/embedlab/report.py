"""The results report: every ``metrics/*.json`` in one table, the book's numbers alongside, honest comparisons.

An evaluated model's headline ``metrics/<model>.json`` is read in full from ``metrics/details/<model>.json``.

* :func:`results_rows`: one row per (model, eval set) with Spearman cosine and its 95 % bootstrap interval (the
  ``ci95`` the evaluate stage writes), plus the book's number where the chapter printed one.
* :func:`compare`: paired bootstrap tests of chosen model pairs on the same evaluation pairs, from each model's
  per-pair cosine scores (``data/eval_scores/<model>.parquet``), so a 0.01 gap on 1,500 pairs is not read as a win
  unless it survives resampling.
* :func:`ablation_lines`: the comparisons named ``ablation: <ingredient>`` as one table, a row per ingredient
  (the variant's score and its paired difference from the full recipe, per set).
* :func:`render_markdown`, :func:`plot_png`, :func:`plot_data`: ``reports/results.md``, a PNG bar chart, and the
  data of the ``dvc plots`` bar chart (dvc.yaml, top-level ``plots:``).

The book's numbers are in :mod:`embedlab.book`, the statistics in :mod:`embedlab.stats`; the offline page for
``dvc plots show`` (vega inline) is :mod:`embedlab.offline_page`, which no stage imports.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from embedlab.book import BOOK, OTHER_ANCHORS, book_number
from embedlab.evaluation import HEADLINE_SET, METRIC_KEYS
from embedlab.stats import CI_KEY, CI_METRIC, paired_bootstrap

SET_TITLES = {
    "stsb_validation": "STS-B validation",
    "stsb_test": "STS-B test",
    "sickr": "SICK-R",
    "pit2015": "PIT-2015 test (AP)",
    "twitter_url": "Twitter URL test (AP)",
}
ABLATION = "ablation: "  # report.comparisons named so form the ablation table (a = a reference, b = one change)


def load_metrics(metrics_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` under ``metrics_dir`` by file stem; unreadable files are reported, not skipped silently.

    An evaluated model's ``<stem>.json`` is only its headline (what ``dvc metrics diff`` compares); the book's
    keys and CIs the report needs are in ``details/<stem>.json``, which stands in for it here.
    """
    metrics_dir = Path(metrics_dir)
    out = {path.stem: _read_json(path) for path in sorted(metrics_dir.glob("*.json"))}
    for stem in out:
        details = metrics_dir / "details" / f"{stem}.json"
        if details.is_file():
            out[stem] = _read_json(details)
    return out


def _read_json(path: Path) -> Any:
    from embedlab.errors import DataError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err})", "re-run the stage that writes it") from None


def is_sts(metrics: Any) -> bool:
    """An evaluate stage's details file: the book's keys at top level."""
    return isinstance(metrics, dict) and isinstance(metrics.get("spearman_cosine"), int | float)


def _set_metrics(metrics: dict[str, Any], eval_set: str) -> dict[str, Any] | None:
    return metrics if eval_set == HEADLINE_SET else metrics.get(eval_set)


def results_rows(all_metrics: dict[str, dict[str, Any]], sets: list[str], order: list[str] | None = None):
    """One dict per (STS model, eval set): model, set, spearman_cosine, ci_low, ci_high, book (None if absent)."""
    names = [n for n in all_metrics if is_sts(all_metrics[n])]
    first = [n for n in (order or []) if n in names]
    rows = []
    for name in first + sorted(set(names) - set(first)):
        metrics = all_metrics[name]
        for eval_set in sets:
            values = _set_metrics(metrics, eval_set)
            if not isinstance(values, dict) or CI_METRIC not in values:
                continue
            ci = metrics.get(CI_KEY, {}).get(eval_set, {}).get(CI_METRIC, {})
            book = book_number(name) if eval_set == HEADLINE_SET else None
            rows.append(
                {
                    "model": name,
                    "set": eval_set,
                    "spearman_cosine": float(values[CI_METRIC]),
                    "ci_low": _float_or_none(ci.get("low")),
                    "ci_high": _float_or_none(ci.get("high")),
                    "book": book.spearman if book else None,
                }
            )
    return rows


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def load_pair_scores(scores_dir: str | Path, models: list[str]):
    """``{model: DataFrame}`` of per-pair scores for the models that have a file (others are simply absent).

    ``<model>.parquet`` is the evaluate stage's (STS sets); another evaluator can add sets for the same model as
    ``<model>@<what>.parquet`` with the same columns (e.g. in-domain paraphrase pairs with 0/1 gold and
    ``metric = average_precision``), and the paired tests cover them too.
    """
    import pandas as pd

    out = {}
    for name in models:
        paths = [Path(scores_dir) / f"{name}.parquet", *sorted(Path(scores_dir).glob(f"{name}@*.parquet"))]
        frames = [pd.read_parquet(p) for p in paths if p.is_file()]
        if frames:
            out[name] = pd.concat(frames, ignore_index=True)
    return out


def compare(pair_scores: dict[str, Any], comparisons: list[dict[str, str]], *, resamples: int, seed: int):
    """Paired bootstrap of each comparison on every set both models were scored on.

    A comparison with a model that has no scores, or whose sets hold different pairs (gold scores differ), gets a
    row with ``status`` saying why, instead of a number.
    """
    import numpy as np

    rows = []
    for comp in comparisons:
        name, a, b = comp["name"], comp["a"], comp["b"]
        missing = [m for m in (a, b) if m not in pair_scores]
        if missing:
            rows.append({"name": name, "a": a, "b": b, "set": None, "status": f"not evaluated: {', '.join(missing)}"})
            continue
        fa, fb = pair_scores[a], pair_scores[b]
        for eval_set in list(dict.fromkeys(fa["set"])):
            sa = fa[fa["set"] == eval_set].sort_values("pair")
            sb = fb[fb["set"] == eval_set].sort_values("pair")
            row: dict[str, Any] = {"name": name, "a": a, "b": b, "set": eval_set}
            if sb.empty:
                continue
            if len(sa) != len(sb) or not np.array_equal(sa["gold"].to_numpy(), sb["gold"].to_numpy()):
                rows.append({**row, "status": "different evaluation pairs (re-run both evaluations)"})
                continue
            metric = str(sa["metric"].iloc[0]) if "metric" in sa else "spearman"
            test = paired_bootstrap(
                sa["gold"].to_numpy(),
                sa["cosine"].to_numpy(),
                sb["cosine"].to_numpy(),
                metric=metric,
                resamples=resamples,
                seed=seed,
            )
            rows.append({**row, "metric": metric, "pairs": len(sa), **test, "status": "ok"})
    return rows


def other_metrics(all_metrics: dict[str, dict[str, Any]], sts_sets: list[str]) -> dict[str, dict[str, float]]:
    """Numeric leaves of every metrics file that the STS table does not show (cross-encoder accuracy, AP...)."""
    skip_top = {*METRIC_KEYS, *sts_sets, CI_KEY}
    out = {}
    for name, metrics in all_metrics.items():
        if not isinstance(metrics, dict):
            continue
        rest = {k: v for k, v in metrics.items() if not (is_sts(metrics) and k in skip_top)}
        flat = _flatten(rest)
        if flat:
            out[name] = flat
    return out


def _flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            flat.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, bool):
        pass
    elif isinstance(obj, int | float):
        flat[prefix[:-1]] = float(obj)
    return flat


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(p_value: float, resamples: int) -> str:
    """A bootstrap p-value of 0 only means "below 1/resamples"."""
    return f"< {1 / resamples:.0e}" if p_value == 0 else f"{p_value:.3f}"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    text = _fmt(row["spearman_cosine"])
    if row["ci_low"] is not None and row["ci_high"] is not None:
        text += f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return text


def ablation_lines(comparisons: list[dict[str, Any]], by_key: dict, sets: list[str]) -> list[str]:
    """The ablation table: per ``ablation: <ingredient>`` comparison (a = the reference recipe, b = the same with
    one ingredient changed), the variant's score [CI] and Δ = variant − reference [95 % CI of Δ] per set, bold
    where the difference holds."""
    ablations = [c for c in comparisons if c["name"].startswith(ABLATION)]
    if not ablations:
        return []
    lines = [
        "",
        "## Ablation: which ingredient moves the score",
        "",
        "Each row changes one ingredient of its reference model (everything else equal) and gives the variant's "
        "score [95 % CI] and its paired difference Δ = variant − reference [95 % CI of Δ]; **bold**: the interval "
        "excludes 0.",
        "",
        "| ingredient changed | reference | variant | " + " | ".join(SET_TITLES.get(s, s) for s in sets) + " |",
        "|---|---|---|" + "---|" * len(sets),
    ]
    names = list(dict.fromkeys(c["name"] for c in ablations))
    for name in names:
        tests = {c["set"]: c for c in ablations if c["name"] == name}
        first = next(iter(tests.values()))
        reference, variant = first["a"], first["b"]
        cells = []
        for s in sets:
            c = tests.get(s) or tests.get(None)
            if c is None or c["status"] != "ok":
                cells.append(c["status"] if c else "–")
                continue
            delta = f"Δ {c['delta']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
            cells.append(f"{_cell(by_key.get((variant, s)))}<br>{f'**{delta}**' if c['holds'] else delta}")
        lines.append(f"| {name.removeprefix(ABLATION)} | {reference} | {variant} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(
    rows: list[dict[str, Any]],
    comparisons: list[dict[str, Any]],
    others: dict[str, dict[str, float]],
    sets: list[str],
    *,
    resamples: int,
    pairs: dict[str, int] | None = None,
    max_other_keys: int = 25,
) -> str:
    """``reports/results.md``: the STS table with the book alongside, the paired tests, everything else."""
    by_key = {(r["model"], r["set"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    pairs = pairs or {}
    lines = [
        "# Results",
        "",
        "Written by the `report` stage (`dvc repro report`) from `metrics/*.json`; do not edit by hand.",
        "",
        "## STS: Spearman correlation of cosine similarity with the gold scores",
        "",
        f"Each cell: the score on all pairs and its 95 % bootstrap confidence interval ({resamples} resamples of the "
        "pairs, seeded). *Book* is the chapter's printed `spearman_cosine` on STS-B validation (bert-base-uncased or "
        "all-MiniLM-L6-v2, 50k MNLI train rows, GPU): a reference for direction, not a target for this profile.",
        "",
    ]
    header = ["model", *[SET_TITLES.get(s, s) + (f" (n={pairs[s]})" if s in pairs else "") for s in sets], "book"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        book = book_number(model)
        cells = [_cell(by_key.get((model, s))) for s in sets]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {_fmt(book.spearman) if book else '–'} |")
    if not models:
        lines.append("| (no evaluated model yet) |" + " |" * (len(header) - 1))
    lines += ["", "Book numbers: " + "; ".join(f"`{k}` {v.spearman:.4f} = {v.what}" for k, v in BOOK.items()) + "."]
    lines += ["", *OTHER_ANCHORS]
    lines += ablation_lines(comparisons, by_key, sets)
    comparisons = [c for c in comparisons if not c["name"].startswith(ABLATION)]  # in the ablation table
    lines += [
        "",
        "## Does the difference hold? Paired bootstrap on the same pairs",
        "",
        f"Δ = score(b) − score(a); both models are scored on the same {resamples} resamples of the evaluation pairs. "
        "The difference *holds* when its 95 % interval excludes 0.",
        "",
        "| comparison | set | a | b | score a | score b | Δ | 95 % CI of Δ | p | holds? |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        if c["status"] != "ok":
            where = SET_TITLES.get(c["set"], c["set"] or "–")
            lines.append(f"| {c['name']} | {where} | {c['a']} | {c['b']} | | | | | | {c['status']} |")
            continue
        verdict = "**yes**" if c["holds"] else "no (within noise)"
        lines.append(
            f"| {c['name']} | {SET_TITLES.get(c['set'], c['set'])} | {c['a']} | {c['b']} | {_fmt(c['score_a'])} | "
            f"{_fmt(c['score_b'])} | {c['delta']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] | "
            f"{_p(c['p_value'], resamples)} | {verdict} |"
        )
    if not comparisons:
        lines.append("| (no comparison configured: params.yaml report.comparisons) |" + " |" * 9)
    lines += ["", "## Other metrics", ""]
    if not others:
        lines.append("None.")
    for name, flat in others.items():
        items = list(flat.items())
        shown = ", ".join(f"`{k}` {v:.4g}" for k, v in items[:max_other_keys])
        more = f" … ({len(items) - max_other_keys} more in metrics/{name}.json)" if len(items) > max_other_keys else ""
        lines.append(f"- **{name}**: {shown}{more}")
    return "\n".join(lines) + "\n"


def plot_data(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records for the ``dvc plots`` bar chart (JSON keeps numbers numbers; CSV would make them strings)."""
    return [
        {
            "model": r["model"],
            "set": r["set"],
            "spearman_cosine": round(r["spearman_cosine"], 6),
            "ci_low": None if r["ci_low"] is None else round(r["ci_low"], 6),
            "ci_high": None if r["ci_high"] is None else round(r["ci_high"], 6),
        }
        for r in rows
    ]


def plot_png(rows: list[dict[str, Any]], sets: list[str], path: str | Path) -> None:
    """Grouped horizontal bars (model x eval set) with CI whiskers and the book's number as a black diamond."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from embedlab.io import atomic_path

    models = list(dict.fromkeys(r["model"] for r in rows))
    by_key = {(r["model"], r["set"]): r for r in rows}
    height = 0.8 / max(len(sets), 1)
    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.3 * max(len(models), 1) * max(len(sets), 1)))
    y = np.arange(len(models))[::-1].astype(float)  # first model on top
    colors = plt.get_cmap("tab10").colors
    for j, eval_set in enumerate(sets):
        offsets = y + (len(sets) - 1) / 2 * height - j * height
        vals = [by_key.get((m, eval_set), {}).get("spearman_cosine", np.nan) for m in models]
        lows = [by_key.get((m, eval_set), {}).get("ci_low") for m in models]
        highs = [by_key.get((m, eval_set), {}).get("ci_high") for m in models]
        err = np.array(
            [
                [v - lo if lo is not None else 0 for v, lo in zip(vals, lows, strict=True)],
                [hi - v if hi is not None else 0 for v, hi in zip(vals, highs, strict=True)],
            ]
        )
        ax.barh(offsets, vals, height=height * 0.95, color=colors[j % 10], label=SET_TITLES.get(eval_set, eval_set))
        ax.errorbar(vals, offsets, xerr=np.nan_to_num(err), fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        for off, v, hi in zip(offsets, vals, highs, strict=True):
            if np.isfinite(v):  # the value right of its whisker
                ax.text((hi if hi is not None else v) + 0.01, off, f"{v:.3f}", va="center", fontsize=7)
    if HEADLINE_SET in sets:  # the book's number sits on the STS-B validation bar
        top = (len(sets) - 1) / 2 * height - sets.index(HEADLINE_SET) * height
        marks = [(book_number(m).spearman, y[i] + top) for i, m in enumerate(models) if book_number(m)]
        if marks:
            ax.scatter(*zip(*marks, strict=True), marker="D", color="black", zorder=3, s=18, label="book (STS-B val.)")
    ax.set_yticks(y, models)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("Spearman correlation of cosine similarity (whiskers: 95 % bootstrap CI)")
    ax.set_title("Sentence embedding models on STS")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))  # room for the legend: ~0.6 inch
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})  # no version stamp: stable bytes
    plt.close(fig)


def write_report(
    metrics_dir: str | Path,
    scores_dir: str | Path,
    out_dir: str | Path,
    *,
    sets: list[str],
    comparisons: list[dict[str, str]],
    resamples: int,
    seed: int,
    order: list[str] | None = None,
) -> dict[str, Any]:
    """Write results.md, results.png, results_plot.json and comparisons.json to ``out_dir``.

    The offline page for ``dvc plots show`` is not written here: it is committed (.dvc/plots/offline_page.html, from
    :func:`embedlab.offline_page.offline_html_template`), so a fresh clone renders plots before any stage ran.
    """
    from embedlab.io import atomic_path, write_json

    out_dir = Path(out_dir)
    all_metrics = load_metrics(metrics_dir)
    rows = results_rows(all_metrics, sets, order)
    models = list(dict.fromkeys(r["model"] for r in rows))
    wanted = list(dict.fromkeys([*models, *(m for c in comparisons for m in (c["a"], c["b"]))]))
    scores = load_pair_scores(scores_dir, wanted)
    tests = compare(scores, comparisons, resamples=resamples, seed=seed)
    pairs = {}
    for frame in scores.values():
        for eval_set, n in frame.groupby("set").size().items():
            pairs.setdefault(str(eval_set), int(n))
    others = other_metrics(all_metrics, sets)
    markdown = render_markdown(rows, tests, others, sets, resamples=resamples, pairs=pairs)
    with atomic_path(out_dir / "results.md") as tmp:
        tmp.write_text(markdown, encoding="utf-8")
    write_json(out_dir / "results_plot.json", plot_data(rows))
    write_json(out_dir / "comparisons.json", tests)
    plot_png(rows, sets, out_dir / "results.png")
    return {"rows": rows, "comparisons": tests, "others": others}
