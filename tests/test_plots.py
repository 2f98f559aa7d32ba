"""The plots `dvc plots show` draws: training curves at their training step, one chart per metric, offline.

Why each check exists (issue #18): DVC drew dvclive's points by row index (a point logged at step 2 sat at 0), one page
held every file of every dvclive folder (187 charts, 15 empty, timings and throughput among them), and a fresh clone
loaded vega from a CDN because the offline page was a pipeline output that only `dvc pull` brings.

* Static: the committed page ``.dvc/plots/offline_page.html`` is what
  :func:`embedlab.offline_page.offline_html_template` makes with the installed vl-convert-python (the lock file's), and
  ``.dvc/config`` points at it; every curve chart is drawn against ``step`` and lists the dvclive file of every
  training run; dvclive folders are plain outs; only the evaluate stages declare metrics.
* On the tiny pipeline (``conftest.tiny_repo``, read only): every point sits at the step it was logged at, each chart
  has data, the page has vega inline and no external script; a fresh ``git clone`` + ``dvc pull`` renders the same
  page offline, and ``dvc plots diff main other`` overlays the curves of both revisions.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run, run_dvc
from test_declared import dvc_stages

from embedlab import offline_page
from embedlab.finetune import RECIPES

PAGE = ".dvc/plots/offline_page.html"
REGENERATE = (
    'python -c "from pathlib import Path; from embedlab.offline_page import offline_html_template as t; '
    f"Path('{PAGE}').write_text(t(), encoding='utf-8')\""
)
# Curve charts: the chart id, and the dvclive file (under each run's folder) whose runs it overlays.
LOSS_CHARTS = {"loss_bi_encoders", "loss_tsdae", "loss_cross_encoder"}
CURVES = {
    "stsb_validation_during_training": "eval/stsb_validation_spearman_cosine.tsv",
    **dict.fromkeys(LOSS_CHARTS, "train/loss.tsv"),
    "learning_rate": "train/learning_rate.tsv",
}
REPORT_PLOTS = {"reports/results_plot.json", "reports/results.png", "plots/silver_label/score_histogram.csv"}


def top_plots(repo: Path = ROOT) -> dict[str, dict]:
    """dvc.yaml's top-level plots by id (a bare file name has no properties)."""
    out: dict[str, dict] = {}
    for item in yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["plots"]:
        if isinstance(item, str):
            out[item] = {}
        else:
            ((name, props),) = item.items()
            out[name] = props or {}
    return out


def live_dirs(repo: Path = ROOT) -> set[str]:
    """The dvclive folders: every training stage's output under plots/ that is a folder, not a file."""
    return {o for s in dvc_stages(repo) for o in s.outs if o.startswith("plots/") and not Path(o).suffix}


def logged(path: Path) -> list[tuple[int, float]]:
    """A dvclive .tsv as (step, value) rows, in file order."""
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    field = path.stem
    return [(int(r["step"]), float(r[field])) for r in rows]


def vegalite_version(repo: Path) -> str:
    """The Vega-Lite version the committed page carries (its header comment)."""
    page = (repo / PAGE).read_text(encoding="utf-8")
    return re.search(r"vega-lite (5\.[\d.]+)", page)[1]


def assert_offline_page(page: str, charts: int) -> None:
    """DVC's page: vega inline from the committed template, no external script, ``charts`` vega charts, none empty."""
    scripts = re.findall(r"<script[^>]*>", page, flags=re.IGNORECASE)
    assert scripts and not [s for s in scripts if "src" in s.lower()], scripts
    assert "cdn.jsdelivr" not in page
    bundle = (ROOT / PAGE).read_text(encoding="utf-8").split("{refresh_tag}")[1].split("{plot_divs}")[0]
    assert bundle in page  # the committed template, vega and all
    assert page.count("vegaEmbed('#") == charts
    assert "var spec = {};" not in page


def test_committed_offline_page_is_current_and_configured():
    """A fresh clone renders offline: the page is in git, current with the lock's vl-convert, and configured."""
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    assert page == offline_page.offline_html_template(), f"{PAGE} is stale; regenerate it: {REGENERATE}"
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC puts its CDN <script src> tags at {scripts}
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    assert re.search(r"vega [\d.]+, vega-lite 5\.[\d.]+, vega-embed [\d.]+", page)
    assert 500_000 < len(page.encode()) < 1_500_000  # ~0.9 MB: the minified vega, vega-lite and vega-embed
    assert run_dvc(ROOT, "config", "plots.html_template").stdout.strip() == "plots/offline_page.html"  # .dvc-relative
    ignored = run(["git", "check-ignore", "-q", PAGE], ROOT, check=False)
    assert ignored.returncode == 1, f"{PAGE} is git-ignored: a clone would not have it"


def test_curve_charts_overlay_every_training_run_against_the_step():
    plots = top_plots()
    assert set(plots) == REPORT_PLOTS - {"plots/silver_label/score_histogram.csv"} | set(CURVES)
    dirs = live_dirs()
    assert len(dirs) == 13 + len(
        RECIPES
    )  # cross-encoder, 3 AugSBERT, 3 scratch, 1 per recipe, TSDAE/SimCSE/CT, 1 + 2 domain
    for chart, name in CURVES.items():
        props = plots[chart]
        assert props["x"] == "step" and props["x_label"] == "training step" and props["title"], chart
        assert props["template"] == "curves", chart  # .dvc/plots/curves.json: a colour per run, dashes per revision
        field = Path(name).stem
        assert set(props["y"].values()) == {field}, chart  # the tsv's own column
        for file in props["y"]:
            run_dir, _, rest = file.partition("/plots/metrics/")
            assert run_dir in dirs and rest == name, f"{chart}: {file}"
    # every run's loss in exactly one loss chart and its learning rate in the learning-rate chart
    loss_runs = [f.partition("/plots/metrics/")[0] for c in LOSS_CHARTS for f in plots[c]["y"]]
    assert sorted(loss_runs) == sorted(dirs)
    assert {f.partition("/plots/metrics/")[0] for f in plots["learning_rate"]["y"]} == dirs
    assert {f.partition("/plots/metrics/")[0] for f in plots["loss_tsdae"]["y"]} == {
        "plots/train_tsdae",
        "plots/adapt_pretrain",
    }
    assert list(plots["loss_cross_encoder"]["y"]) == ["plots/train_cross_encoder/plots/metrics/train/loss.tsv"]


def test_only_evaluations_are_metrics_and_dvclive_folders_are_plain_outs():
    """`dvc metrics show` lists evaluations only; no dvclive folder is a stage plot (DVC would draw every file)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as dvc:
        metric_outs = {(s.name, o.def_path) for s in dvc.index.stages for o in s.outs if o.metric}
        plot_outs = {o.def_path for s in dvc.index.stages for o in s.outs if o.plot}
        outs = {s.name: {o.def_path for o in s.outs} for s in dvc.index.stages}
    prefix = {"evaluate": "metrics/", "evaluate_domain": "metrics/twitter-"}
    expected = {(n, f"{prefix[n.split('@')[0]]}{n.split('@')[1]}.json") for n in outs if n.split("@")[0] in prefix}
    assert metric_outs == expected and len(expected) == 17 + len(RECIPES)  # 13 + 1 per recipe models, 4 Twitter
    assert plot_outs == {"plots/silver_label/score_histogram.csv"}
    assert "metrics/details/baseline.json" in outs["evaluate@baseline"]
    assert {"metrics/cross_encoder.json", "plots/train_cross_encoder"} <= outs["train_cross_encoder"]
    assert {"metrics/export.json"} <= outs["export"]


# ------------------------------------------------------------------------------------------------------------
# On the reproduced tiny pipeline


def plots_json(repo: Path, *args: str) -> dict:
    """``dvc plots show|diff --json``: {"data": {chart id: [{"type", "revisions", "content"}]}, "errors"?}."""
    return json.loads(run_dvc(repo, "plots", *args, "--json").stdout)


def series(spec: dict, y_file: str, rev: str) -> list[tuple[int, float]]:
    """The (x, y) points a vega chart draws for one y file of one revision, in data order."""
    values = spec["data"]["values"]
    y = spec["encoding"]["y"]["field"]
    x = spec["encoding"]["x"]["field"]
    mine = [v for v in values if v["rev"] == rev and (y_file == v["filename"] or y_file.endswith("/" + v["filename"]))]
    return [(int(v[x]), float(v[y])) for v in mine]


def check_curves_at_logged_steps(repo: Path, shown: dict, rev: str = "workspace") -> int:
    """Every curve point of ``shown`` at the step and value its .tsv logged; returns the number of points checked."""
    plots = top_plots(repo)
    points = 0
    for chart in CURVES:
        ((entry,),) = [shown["data"][chart]]
        spec = entry["content"]
        assert spec["encoding"]["x"]["field"] == "step", chart
        assert spec["encoding"]["x"]["title"] == "training step"
        for y_file in plots[chart]["y"]:
            expected = logged(repo / y_file)
            assert expected, f"{y_file} logged nothing"
            assert series(spec, y_file, rev) == expected, f"{chart}: {y_file}"
            points += len(expected)
    return points


def test_plots_show_draws_each_point_at_its_logged_step(tiny_repo, tmp_path):
    shown = plots_json(tiny_repo, "show")
    assert "errors" not in shown, shown.get("errors")
    assert set(shown["data"]) == REPORT_PLOTS | set(CURVES)
    # the tiny profile's fine-tuning logs its first STS-B score at step 2 (eval_steps: 2), not at row 0
    book = logged(tiny_repo / "plots/finetune/book/plots/metrics/eval/stsb_validation_spearman_cosine.tsv")
    assert book[0][0] == 2
    assert check_curves_at_logged_steps(tiny_repo, shown) > 50
    # every run that logged an STS-B validation curve is in that chart (no run left out)
    evaluated = {str(p.relative_to(tiny_repo)) for p in tiny_repo.glob("plots/**/stsb_validation_spearman_cosine.tsv")}
    assert evaluated == set(top_plots(tiny_repo)["stsb_validation_during_training"]["y"])

    # the curves template compiles with the vega the page carries: one legend entry per run, named after its folder
    import vl_convert as vlc

    svg = vlc.vegalite_to_svg(shown["data"]["loss_bi_encoders"][0]["content"], vl_version=vegalite_version(tiny_repo))
    runs = [
        f.partition("/plots/metrics/")[0].removeprefix("plots/") for f in top_plots(tiny_repo)["loss_bi_encoders"]["y"]
    ]
    assert len(runs) == 10 + len(RECIPES) and all(f">{r}</text>" in svg for r in runs), [
        r for r in runs if f">{r}</text>" not in svg
    ]

    run_dvc(tiny_repo, "plots", "show", "-o", str(tmp_path / "html"))
    page = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert_offline_page(page, charts=len(CURVES) + 2)  # the curves, the bar chart, the silver histogram
    assert page.count('<img src="static/') == 1  # reports/results.png, copied beside the page


def test_fresh_clone_pulls_and_renders_offline_and_diffs_two_revisions(tiny_repo, tmp_path):
    """`git clone`, `dvc pull` from a local remote, `dvc plots show`; then a branch with other curves, `plots diff`."""
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(tiny_repo), str(clone)], tmp_path)
    for key, value in [("user.email", "tests@embedlab"), ("user.name", "embedlab tests")]:
        run(["git", "config", key, value], clone)
    # the tiny repo's cache has a remote's layout (files/md5/..): a local remote without pushing anything
    run_dvc(clone, "remote", "add", "--local", "-d", "origin", str(tiny_repo / ".dvc" / "cache"))
    assert not (clone / "reports" / "results_plot.json").exists() and not (clone / "plots").exists()  # DVC outputs
    run_dvc(clone, "pull", *sorted(live_dirs(clone) | REPORT_PLOTS))
    shown = plots_json(clone, "show")
    assert "errors" not in shown, shown.get("errors")
    assert check_curves_at_logged_steps(clone, shown) > 50
    run_dvc(clone, "plots", "show", "-o", str(tmp_path / "html"))  # no --html-template: the committed config's
    assert_offline_page((tmp_path / "html" / "index.html").read_text(encoding="utf-8"), charts=len(CURVES) + 2)

    # branch `other`: the softmax run's loss curve doubled, committed to the cache as a rerun would be
    softmax = "plots/train_scratch/softmax/plots/metrics/train/loss.tsv"
    before = logged(clone / softmax)
    run(["git", "checkout", "-q", "-b", "other"], clone)
    # `dvc commit` hashes the stage's deps and outs: bring them
    run_dvc(clone, "pull", "--with-deps", "train_scratch@softmax")
    path = clone / softmax
    path.unlink()  # never write through a link into the cache
    path.write_text("step\tloss\n" + "".join(f"{s}\t{2 * v}\n" for s, v in before), encoding="utf-8")
    run_dvc(clone, "commit", "-f", "train_scratch@softmax")
    run(["git", "commit", "-qam", "other curves"], clone)
    diff = plots_json(clone, "diff", "main", "other")
    assert "errors" not in diff, diff.get("errors")
    ((entry,),) = [diff["data"]["loss_bi_encoders"]]
    spec = entry["content"]
    assert {v["rev"] for v in spec["data"]["values"]} == {"main", "other"}
    assert series(spec, softmax, "main") == before
    assert series(spec, softmax, "other") == [(s, 2 * v) for s, v in before]
    mnrl = "plots/train_scratch/mnrl/plots/metrics/train/loss.tsv"
    assert series(spec, mnrl, "main") == series(spec, mnrl, "other") == logged(clone / mnrl)
    run_dvc(clone, "plots", "diff", "main", "other", "-o", str(tmp_path / "diff"))
    assert_offline_page((tmp_path / "diff" / "index.html").read_text(encoding="utf-8"), charts=len(CURVES) + 2)


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/tiny.yaml"])
def test_profiles_log_the_curves_the_charts_draw(profile):
    """A chart whose runs log nothing would be empty: the runs in the STS-B chart evaluate during training."""
    from embedlab.params import _ParamsLoader

    params = yaml.load((ROOT / profile).read_text(encoding="utf-8"), Loader=_ParamsLoader)
    blocks = {
        **{f"plots/train_scratch/{k}": v for k, v in params["train_scratch"]["losses"].items()},
        **{f"plots/finetune/{k}": v for k, v in params["finetune"]["recipes"].items()},
    }
    charted = {f.partition("/plots/metrics/")[0] for f in top_plots()["stsb_validation_during_training"]["y"]}
    # every profile trains every run the chart names (a missing file is an error in `dvc plots show`)
    assert charted == set(blocks)
    assert all(block["eval_steps"] and block["logging_steps"] for block in blocks.values())
