"""Bootstrap intervals and paired tests (embedlab.stats), the results report and offline `dvc plots show`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run, run_dvc

from embedlab import evaluation, offline_page, report, stats
from embedlab.evaluation import METRIC_KEYS
from embedlab.stats import bootstrap_ci, paired_bootstrap

SETS = ["stsb_validation", "stsb_test", "sickr"]


def noisy(gold: np.ndarray, sd: float, seed: int) -> np.ndarray:
    return gold + np.random.default_rng(seed).normal(0, sd, len(gold))


@pytest.fixture(scope="module")
def gold() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, 800)


# --- bootstrap ---------------------------------------------------------------------------------------------------


def test_row_spearman_equals_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    gold = rng.integers(0, 6, size=(5, 50)).astype(float)  # STS-like: many ties
    pred = rng.normal(size=(5, 50)).round(1)
    rows = stats._spearman_rows(gold, pred)
    assert rows == pytest.approx([spearmanr(g, p)[0] for g, p in zip(gold, pred, strict=True)], abs=1e-12)


def test_bootstrap_ci_is_seeded_contains_the_score_and_narrows_with_more_pairs(gold):
    pred = noisy(gold, 0.3, 1)
    ci = bootstrap_ci(gold, pred, resamples=1000, seed=7)
    assert ci == bootstrap_ci(gold, pred, resamples=1000, seed=7)
    assert ci != bootstrap_ci(gold, pred, resamples=1000, seed=8)
    low, high = ci
    assert low < stats.score(gold, pred) < high
    narrow = bootstrap_ci(np.tile(gold, 4), np.tile(pred, 4), resamples=1000, seed=7)
    assert narrow[1] - narrow[0] < 0.7 * (high - low)  # width ~ 1/sqrt(n): half with 4x the pairs


def test_bootstrap_ci_covers_the_population_value_about_95_percent_of_the_time():
    """Coverage check: draw many samples from one big 'population' of pairs."""
    rng = np.random.default_rng(11)
    pop_gold = rng.uniform(0, 1, 50_000)
    pop_pred = pop_gold + rng.normal(0, 0.4, pop_gold.size)
    truth = stats.score(pop_gold, pop_pred)
    hits = 0
    for i in range(60):
        idx = rng.integers(0, pop_gold.size, 300)
        low, high = bootstrap_ci(pop_gold[idx], pop_pred[idx], resamples=1000, seed=i)
        hits += low <= truth <= high
    assert hits >= 51  # 95 % nominal; P(<= 50 of 60) is ~1 % for a calibrated interval


def test_paired_bootstrap_finds_a_real_gap_and_not_a_fake_one(gold):
    good, bad = noisy(gold, 0.2, 1), noisy(gold, 0.6, 2)
    real = paired_bootstrap(gold, bad, good, resamples=1000, seed=0)
    assert real["delta"] > 0.1 and real["holds"] and real["low"] > 0 and real["p_value"] < 0.01
    assert real["score_b"] - real["score_a"] == pytest.approx(real["delta"])
    same = paired_bootstrap(gold, good, good, resamples=1000, seed=0)
    assert same["delta"] == 0 and not same["holds"] and same["p_value"] == 1.0
    # Two draws of the same quality: a small gap that must not be called real.
    twin = paired_bootstrap(gold, noisy(gold, 0.3, 3), noisy(gold, 0.3, 4), resamples=1000, seed=0)
    assert twin["low"] < 0 < twin["high"] and not twin["holds"]


def test_pairing_makes_the_test_sharper_than_comparing_two_intervals(gold):
    """Both models err on the same hard pairs: their intervals overlap, yet the paired test sees the gap."""
    shared = noisy(np.zeros_like(gold), 0.5, 5)
    a, b = gold + shared, gold + shared * 0.9
    ci_a, ci_b = bootstrap_ci(gold, a, seed=1), bootstrap_ci(gold, b, seed=1)
    assert ci_a[1] > ci_b[0]  # overlapping intervals
    assert paired_bootstrap(gold, a, b, seed=1)["holds"]


def test_average_precision_metric_for_binary_labels():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(2)
    labels = (rng.uniform(size=400) < 0.3).astype(float)
    pred = labels + rng.normal(0, 0.8, 400)
    assert stats.score(labels, pred, "average_precision") == pytest.approx(average_precision_score(labels, pred))
    low, high = bootstrap_ci(labels, pred, metric="average_precision", resamples=1000, seed=0)
    assert low < average_precision_score(labels, pred) < high


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="one length"):
        bootstrap_ci([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="unknown bootstrap metric"):
        bootstrap_ci([1, 2, 3], [1, 2, 3], metric="kendall")


def test_point_estimates_equal_scipys_spearmanr_and_pearsonr():
    """score() and the row Pearson are hand-written for the resamples' sake; scipy gives the same numbers."""
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(4)
    gold = rng.integers(0, 26, 1500) / 25  # STS-like gold: 26 levels, many ties
    pred = gold + rng.normal(0, 0.3, gold.size)
    assert abs(stats.score(gold, pred) - spearmanr(gold, pred).statistic) < 1e-12
    assert abs(stats.score(gold, pred, "pearson") - pearsonr(gold, pred).statistic) < 1e-12
    idx = rng.integers(0, gold.size, (200, gold.size))
    rows = stats._pearson_rows(gold[idx], pred[idx])
    assert np.abs(rows - pearsonr(gold[idx], pred[idx], axis=1).statistic).max() < 1e-12


def _former_bootstrap(fn, samples, resamples, seed):
    """The hand-written resampling scipy.stats.bootstrap replaced: seeded (200 x n) index matrices, chunk by chunk."""
    rng = np.random.default_rng(seed)
    n, out, done = len(samples[0]), [], 0
    while done < resamples:
        idx = rng.integers(0, n, size=(min(200, resamples - done), n))
        out.append(fn(*(s[idx] for s in samples)))
        done += len(idx)
    return np.concatenate(out)


@pytest.mark.parametrize("resamples", [1000, 1100])
def test_scipy_bootstrap_draws_exactly_the_former_resamples(gold, resamples):
    """Committed CIs and p-values stay bit for bit: scipy.stats.bootstrap(paired=True) resamples as our code did."""
    from scipy.stats import bootstrap

    a, b = noisy(gold, 0.3, 1), noisy(gold, 0.35, 2)
    spear = stats._spearman_rows
    values = _former_bootstrap(spear, (gold, a), resamples, 42)
    assert bootstrap_ci(gold, a, resamples=resamples, seed=42) == stats._interval(values, 0.95)
    deltas = _former_bootstrap(lambda g, x, y: spear(g, y) - spear(g, x), (gold, a, b), resamples, 42)
    test = paired_bootstrap(gold, a, b, resamples=resamples, seed=42)
    assert (test["low"], test["high"]) == stats._interval(deltas, 0.95)
    assert test["p_value"] == min(1.0, 2 * float((deltas >= 0).mean() if test["delta"] < 0 else (deltas <= 0).mean()))
    # scipy's own percentile interval: the same up to the last bit (why stats._interval stays: module docstring)
    ci = bootstrap(
        (gold, a),
        lambda g, p, axis=-1: spear(g, p),
        paired=True,
        vectorized=True,
        batch=200,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(42),
    ).confidence_interval
    assert np.allclose((ci.low, ci.high), bootstrap_ci(gold, a, resamples=resamples, seed=42), rtol=0, atol=1e-12)


def test_average_precision_resamples_with_one_class_are_dropped_not_nan():
    """A resample with one class has no AP: dropped from the percentiles (scipy's interval would be NaN)."""
    labels = np.array([1.0, 0, 0, 0, 0, 0, 0, 0])
    low, high = bootstrap_ci(labels, np.linspace(1, 0, 8), metric="average_precision", resamples=1000, seed=0)
    assert 0 < low <= high <= 1


# --- evaluation with per-pair scores ----------------------------------------------------------------------------


def test_evaluate_model_encodes_once_and_gives_the_evaluators_numbers_with_intervals():
    """One encoding of the sets' distinct sentences gives the numbers of the book's evaluator encoding each column."""
    from datasets import Dataset

    from embedlab.models import load_sentence_transformer

    pairs = [
        ("A man is playing a guitar.", "A person plays the guitar.", 4.6),
        ("A woman is slicing an onion.", "A woman is cutting an onion.", 4.8),
        ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.4),
        ("Two kids play football.", "Children are playing soccer.", 4.2),
        ("The stock market fell today.", "A man is riding a horse.", 0.0),
        ("A plane is taking off.", "An airplane departs.", 4.4),
        ("A man is eating pasta.", "A man is eating.", 3.2),
        ("The sun is shining.", "It is raining heavily.", 0.8),
    ]
    s1, s2, scores = (list(col) for col in zip(*pairs, strict=True))
    ds = Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": scores})
    # a second set sharing sentences with the first, paired differently: 16 distinct sentences in all
    other = Dataset.from_dict({"sentence1": s1[:6], "sentence2": s2[2:8], "score": [3.0, 1.0, 2.5, 0.5, 4.0, 1.5]})
    sets = {"stsb_validation": ds, "sickr": other}
    model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
    calls = []
    original = model.encode

    def counting(*args, **kwargs):
        calls.append(len(args[0] if args else kwargs["sentences"]))
        return original(*args, **kwargs)

    model.encode = counting

    metrics, frame = evaluation.evaluate_model_with_scores(model, sets)
    assert calls == [16]  # one pass over both sets' distinct sentences
    model.encode = original
    assert set(metrics) == {*METRIC_KEYS, "sickr"} and list(metrics["sickr"]) == METRIC_KEYS
    for name, dataset in sets.items():  # the evaluator's own two encoding passes, set by set
        got = {k: metrics[k] for k in METRIC_KEYS} if name == "stsb_validation" else metrics[name]
        assert got == pytest.approx(evaluation.evaluate_sts(model, dataset, name), abs=1e-6), name
    assert list(frame.columns) == evaluation.PAIR_SCORE_COLUMNS and len(frame) == 14
    val = frame[frame["set"] == "stsb_validation"]
    assert val["gold"].tolist() == pytest.approx([p[2] / 5 for p in pairs])
    assert stats.score(val["gold"], val["cosine"]) == pytest.approx(metrics["spearman_cosine"], abs=1e-9)
    cis = stats.intervals(frame, resamples=1000, seed=3)  # what the evaluate stage writes as ci95; never re-encodes
    assert list(cis) == ["stsb_validation", "sickr"] and set(cis["sickr"]) == {"spearman_cosine"}
    ci = cis["stsb_validation"]["spearman_cosine"]
    assert (ci["low"], ci["high"]) == bootstrap_ci(val["gold"], val["cosine"], resamples=1000, seed=3)
    assert evaluation.evaluate_model(model, {"stsb_validation": ds}) == pytest.approx(
        {k: metrics[k] for k in METRIC_KEYS}, abs=1e-6
    )


# --- the report -------------------------------------------------------------------------------------------------


def evaluate_stage():
    """stages/evaluate.py as a module: its ``headline`` is what the stage writes to metrics/<model>.json."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_stage", ROOT / "stages" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(root: Path, models: dict[str, float]) -> Path:
    """metrics/<model>.json (headline), metrics/details/<model>.json and data/eval_scores/<model>.parquet as the
    evaluate stage writes them."""
    import pandas as pd

    headline = evaluate_stage().headline
    (root / "metrics" / "details").mkdir(parents=True)
    (root / "data" / "eval_scores").mkdir(parents=True)
    rng = np.random.default_rng(0)
    golds = {s: rng.uniform(0, 1, n) for s, n in zip(SETS, (300, 200, 400), strict=True)}
    for i, (name, sd) in enumerate(models.items()):
        frames, metrics, cis = [], {}, {}
        for s, g in golds.items():
            cos = noisy(g, sd, 100 + i)
            value = stats.score(g, cos)
            keys = dict.fromkeys(METRIC_KEYS, value)
            low, high = bootstrap_ci(g, cos, resamples=1000, seed=1)
            cis[s] = {"spearman_cosine": {"low": low, "high": high}}
            metrics.update(keys) if s == "stsb_validation" else metrics.__setitem__(s, keys)
            frames.append(
                pd.DataFrame({"set": s, "pair": range(len(g)), "gold": g, "cosine": cos, "metric": "spearman"})
            )
        metrics["ci95"] = cis
        (root / "metrics" / "details" / f"{name}.json").write_text(json.dumps(metrics))
        (root / "metrics" / f"{name}.json").write_text(json.dumps(headline(metrics, SETS)))
        pd.concat(frames).to_parquet(root / "data" / "eval_scores" / f"{name}.parquet")
    (root / "metrics" / "cross_encoder.json").write_text(json.dumps({"holdout": {"accuracy": 0.8125}, "ok": True}))
    return root


COMPARISONS = [
    {"name": "book vs improved", "a": "finetune-book", "b": "finetune-improved"},
    {"name": "twins", "a": "augsbert", "b": "augsbert-gold-only"},
    {"name": "missing", "a": "augsbert", "b": "domain-adapted"},
]


def test_report_table_and_tests_match_the_metrics_files(tmp_path):
    models = {"baseline": 0.2, "finetune-book": 0.45, "finetune-improved": 0.2, "augsbert": 0.3}
    models["augsbert-gold-only"] = 0.3
    root = fake_run(tmp_path, models)
    out = report.write_report(
        root / "metrics", root / "data" / "eval_scores", root / "reports", sets=SETS,
        comparisons=COMPARISONS, resamples=1000, seed=0, order=["baseline", "finetune-book"],
    )  # fmt: skip
    md = (root / "reports" / "results.md").read_text()
    for name in models:
        saved = json.loads((root / "metrics" / "details" / f"{name}.json").read_text())
        line = next(x for x in md.splitlines() if x.startswith(f"| {name} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        ci = saved["ci95"]["stsb_test"]["spearman_cosine"]
        assert cells[1].startswith(f"{saved['spearman_cosine']:.4f} [")
        assert cells[2] == f"{saved['stsb_test']['spearman_cosine']:.4f} [{ci['low']:.3f}, {ci['high']:.3f}]"
        assert cells[3].startswith(f"{saved['sickr']['spearman_cosine']:.4f}")
    rows = [x for x in md.splitlines() if x.startswith("| ") and "[" in x]
    assert rows[0].startswith("| baseline |") and rows[1].startswith("| finetune-book |")  # params order first
    assert "| 0.8672 |" in next(x for x in rows if x.startswith("| baseline |"))  # the book's number alongside
    assert "| 0.8485 |" in next(x for x in rows if x.startswith("| finetune-book |"))
    assert "(n=300)" in md and "(n=400)" in md

    tests = {(t["name"], t["set"]): t for t in out["comparisons"]}
    real = tests[("book vs improved", "sickr")]
    assert real["holds"] and real["delta"] > 0 and real["status"] == "ok"
    assert real["score_a"] == pytest.approx(json.loads((root / "metrics/details/finetune-book.json").read_text())
                                            ["sickr"]["spearman_cosine"])  # fmt: skip
    assert tests[("missing", None)]["status"] == "not evaluated: domain-adapted"
    assert "not evaluated: domain-adapted" in md and "**yes**" in md
    assert json.loads((root / "reports" / "comparisons.json").read_text()) == json.loads(json.dumps(out["comparisons"]))
    assert "`holdout.accuracy` 0.8125" in md  # other metrics files are listed, not dropped

    plot = json.loads((root / "reports" / "results_plot.json").read_text())
    assert len(plot) == len(models) * len(SETS)
    assert {(p["model"], p["set"]) for p in plot} == {(m, s) for m in models for s in SETS}
    png = (root / "reports" / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_report_reads_the_details_so_the_headline_split_changes_nothing(tmp_path):
    """The same run written the old way (every key in metrics/<model>.json) gives the same report."""
    import shutil

    split = fake_run(tmp_path / "split", {"finetune-book": 0.45, "finetune-improved": 0.2})
    whole = tmp_path / "whole"
    shutil.copytree(split, whole)
    for details in (whole / "metrics" / "details").glob("*.json"):
        details.replace(whole / "metrics" / details.name)
    (whole / "metrics" / "details").rmdir()
    kw = {"sets": SETS, "comparisons": COMPARISONS[:1], "resamples": 1000, "seed": 0}
    for root in (split, whole):
        report.write_report(root / "metrics", root / "data" / "eval_scores", root / "reports", **kw)
    for name in ("results.md", "comparisons.json", "results_plot.json"):
        assert (split / "reports" / name).read_text() == (whole / "reports" / name).read_text(), name
    assert "| finetune-book | 0." in (split / "reports" / "results.md").read_text()


def test_report_handles_no_models_and_mismatched_pairs(tmp_path):
    import pandas as pd

    root = fake_run(tmp_path, {"augsbert": 0.3, "augsbert-gold-only": 0.3})
    path = root / "data" / "eval_scores" / "augsbert.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[0], "gold"] += 0.5  # evaluated on other pairs
    frame.to_parquet(path)
    out = report.write_report(root / "metrics", root / "data" / "eval_scores", root / "r", sets=SETS,
                              comparisons=COMPARISONS[1:2], resamples=1000, seed=0)  # fmt: skip
    assert {t["status"] for t in out["comparisons"]} == {"different evaluation pairs (re-run both evaluations)"}
    empty = tmp_path / "empty"
    (empty / "metrics").mkdir(parents=True)  # no details/ either
    out = report.write_report(empty / "metrics", empty / "scores", empty / "r", sets=SETS, comparisons=COMPARISONS,
                              resamples=1000, seed=0)  # fmt: skip
    assert out["rows"] == [] and "(no evaluated model yet)" in (empty / "r" / "results.md").read_text()


def test_offline_template_has_no_cdn_and_dvc_plots_show_uses_it(tmp_path):
    """`dvc plots show` with the report's template: vega inline, no <script src="http...">."""
    html = offline_page.offline_html_template()
    assert "{plot_divs}" in html and "{scripts}" not in html
    assert "vegaEmbed" in html and len(html) > 100_000

    root = fake_run(tmp_path / "repo", {"baseline": 0.2, "finetune-book": 0.4})
    run(["git", "init", "-q"], root)
    run_dvc(root, "init", "-q")
    (root / ".dvc" / "plots").mkdir(exist_ok=True)
    (root / ".dvc" / "plots" / "grouped_bars.json").write_text((ROOT / ".dvc/plots/grouped_bars.json").read_text())
    import yaml

    top = [p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] if "reports/" in json.dumps(p)]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"plots": top}))
    report.write_report(root / "metrics", root / "data" / "eval_scores", root / "reports", sets=SETS,
                        comparisons=[], resamples=1000, seed=0)  # fmt: skip
    (root / ".dvc" / "plots" / "offline_page.html").write_text(html, encoding="utf-8")
    run_dvc(root, "config", "plots.html_template", "plots/offline_page.html")  # as the committed .dvc/config
    run_dvc(root, "plots", "show", "-o", "out")
    page = (root / "out" / "index.html").read_text()
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and not [s for s in scripts if "src=" in s], f"external scripts: {scripts}"
    assert not re.search(r"""src\s*=\s*["']?https?://""", page) and "cdn.jsdelivr" not in page
    assert page.count("vegaEmbed('#") == 1 and "<img" in page  # the bar chart and the PNG
    spec_json = json.loads(run_dvc(root, "plots", "show", "--json").stdout)
    spec = next(v for k, v in spec_json["data"].items() if k.endswith("results_plot.json"))[0]["content"]
    values = spec["data"]["values"]
    assert {v["model"] for v in values} == {"baseline", "finetune-book"} and len(values) == 6


def test_the_bar_chart_spec_renders_with_the_shipped_vega():
    """The dvc plots template compiles and renders with the vega that the offline page carries."""
    import vl_convert as vlc

    spec = json.loads((ROOT / ".dvc" / "plots" / "grouped_bars.json").read_text())
    text = json.dumps(spec)
    for anchor, value in [("<DVC_METRIC_X>", "spearman_cosine"), ("<DVC_METRIC_Y>", "model")]:
        text = text.replace(anchor, value)
    text = re.sub(r'"<DVC_METRIC_[A-Z_]+>"', '"t"', text)
    spec = json.loads(text)
    spec["data"] = {
        "values": [
            {"model": m, "set": s, "spearman_cosine": v, "ci_low": v - 0.02, "ci_high": v + 0.02, "rev": "workspace"}
            for m, v in [("baseline", 0.87), ("finetune-book", 0.85)]
            for s in SETS
        ]
    }
    svg = vlc.vegalite_to_svg(spec)
    assert svg.count("<path") + svg.count("<rect") >= 6 and "baseline" in svg


def test_report_stage_script_runs_on_the_metrics_files(tmp_path):
    """stages/report.py end to end on fake evaluation outputs, as DVC would run it."""
    import shutil

    root = fake_run(tmp_path / "repo", {"baseline": 0.2, "augsbert": 0.3, "augsbert-gold-only": 0.35})
    shutil.copytree(ROOT / "stages", root / "stages")
    shutil.copytree(ROOT / "src", root / "src")
    shutil.copy(ROOT / "profiles" / "tiny.yaml", root / "params.yaml")
    proc = run([sys.executable, "stages/report.py"], root)
    assert "3 evaluated models" in proc.stdout
    assert "AugSBERT gold-only vs gold+silver (10.5.2) [stsb_validation]: delta" in proc.stdout
    assert (root / "reports" / "results.md").is_file() and (root / "reports" / "results.png").is_file()


def test_paired_tests_cover_extra_sets_of_other_evaluators(tmp_path):
    """An in-domain evaluator's `<model>@<what>.parquet` (0/1 gold, average precision) joins the paired tests."""
    import pandas as pd

    root = fake_run(tmp_path, {"domain-finetune": 0.3, "domain-adapted": 0.3})
    rng = np.random.default_rng(4)
    labels = (rng.uniform(size=500) < 0.3).astype(float)
    for name, sd in [("domain-finetune", 1.2), ("domain-adapted", 0.4)]:
        frame = pd.DataFrame({"set": "twitter_pit", "pair": range(500), "gold": labels,
                              "cosine": labels + rng.normal(0, sd, 500), "metric": "average_precision"})  # fmt: skip
        frame.to_parquet(root / "data" / "eval_scores" / f"{name}@twitter.parquet")
    comp = [{"name": "adapted?", "a": "domain-finetune", "b": "domain-adapted"}]
    out = report.write_report(root / "metrics", root / "data" / "eval_scores", root / "r", sets=SETS,
                              comparisons=comp, resamples=1000, seed=0)  # fmt: skip
    tests = {t["set"]: t for t in out["comparisons"]}
    assert set(tests) == {*SETS, "twitter_pit"}
    pit = tests["twitter_pit"]
    assert pit["metric"] == "average_precision" and pit["holds"] and pit["delta"] > 0.1
    assert "| adapted? | twitter_pit |" in (root / "r" / "results.md").read_text()


def test_ablation_comparisons_form_one_table_with_scores_and_paired_differences(tmp_path):
    models = {"finetune-improved": 0.2, "finetune-improved-pairs": 0.6, "finetune-improved-sampler": 0.2}
    root = fake_run(tmp_path, models)
    comparisons = [
        {"name": "ablation: hard negative -> none", "a": "finetune-improved", "b": "finetune-improved-pairs"},
        {"name": "ablation: no-duplicates -> default", "a": "finetune-improved", "b": "finetune-improved-sampler"},
        {"name": "ablation: lr", "a": "finetune-improved", "b": "finetune-improved-lr"},  # not evaluated
        COMPARISONS[0],
    ]
    out = report.write_report(root / "metrics", root / "data" / "eval_scores", root / "r", sets=SETS,
                              comparisons=comparisons, resamples=1000, seed=0)  # fmt: skip
    md = (root / "r" / "results.md").read_text()
    lines = md.splitlines()
    start = lines.index("## Ablation: which ingredient moves the score")
    table = [x for x in lines[start:] if x.startswith("| ")][:4]  # header + one row per ingredient
    assert [x.split(" | ")[:3] for x in table[1:]] == [
        ["| hard negative -> none", "finetune-improved", "finetune-improved-pairs"],
        ["| no-duplicates -> default", "finetune-improved", "finetune-improved-sampler"],
        ["| lr", "finetune-improved", "finetune-improved-lr"],
    ]
    tests = {(t["name"], t["set"]): t for t in out["comparisons"]}
    for row, name, variant in [(table[1], comparisons[0]["name"], "finetune-improved-pairs"),
                               (table[2], comparisons[1]["name"], "finetune-improved-sampler")]:  # fmt: skip
        cells = [c.strip() for c in row.strip("|").split("|")][3:]
        saved = json.loads((root / "metrics" / "details" / f"{variant}.json").read_text())
        for cell, eval_set in zip(cells, SETS, strict=True):
            t = tests[(name, eval_set)]
            value = saved["spearman_cosine"] if eval_set == "stsb_validation" else saved[eval_set]["spearman_cosine"]
            ci = saved["ci95"][eval_set]["spearman_cosine"]
            delta = f"Δ {t['delta']:+.4f} [{t['low']:+.4f}, {t['high']:+.4f}]"
            assert cell == f"{value:.4f} [{ci['low']:.3f}, {ci['high']:.3f}]<br>" + (
                f"**{delta}**" if t["holds"] else delta
            )
    assert all(tests[(comparisons[0]["name"], s)]["holds"] for s in SETS)  # noisier by far: every set, in bold
    assert table[3].endswith("| not evaluated: finetune-improved-lr | not evaluated: finetune-improved-lr "
                             "| not evaluated: finetune-improved-lr |")  # fmt: skip
    assert "| ablation: " not in md  # only in the ablation table, not again among the paired tests
    assert "| book vs improved |" not in md.split("## Ablation")[1].split("## Does")[0]  # others stay below


def test_pipeline_report_matches_its_metrics_files(tiny_repo):
    """The reproduced tiny pipeline's report against its own metrics files (read only, nothing re-run)."""
    import yaml

    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    md = (tiny_repo / "reports" / "results.md").read_text()
    plot = {(p["model"], p["set"]): p for p in json.loads((tiny_repo / "reports" / "results_plot.json").read_text())}
    for name in params["evaluate"]["models"]:
        saved = json.loads((tiny_repo / "metrics" / "details" / f"{name}.json").read_text())
        head = json.loads((tiny_repo / "metrics" / f"{name}.json").read_text())
        assert list(head) == SETS  # the headline: per set, Spearman cosine and its CI, nothing else
        line = next(x for x in md.splitlines() if x.startswith(f"| {name} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        for i, eval_set in enumerate(SETS, start=1):
            value = saved["spearman_cosine"] if eval_set == "stsb_validation" else saved[eval_set]["spearman_cosine"]
            ci = saved["ci95"][eval_set]["spearman_cosine"]
            assert head[eval_set] == {
                "spearman_cosine": round(value, 6), "ci95_low": round(ci["low"], 6), "ci95_high": round(ci["high"], 6)
            }  # fmt: skip
            assert cells[i] == f"{value:.4f} [{ci['low']:.3f}, {ci['high']:.3f}]"
            assert plot[(name, eval_set)]["spearman_cosine"] == pytest.approx(value, abs=1e-6)
            assert plot[(name, eval_set)]["ci_low"] == pytest.approx(ci["low"], abs=1e-6)
    evaluated = set(params["evaluate"]["models"])
    for test in json.loads((tiny_repo / "reports" / "comparisons.json").read_text()):
        expect_ok = {test["a"], test["b"]} <= evaluated
        assert (test["status"] == "ok") == expect_ok, test
    assert (tiny_repo / "reports" / "results.png").read_bytes()[:4] == b"\x89PNG"
