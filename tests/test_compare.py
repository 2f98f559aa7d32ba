"""Compare at a glance: the headline metrics files and `python -m embedlab.compare` (show, diff) on them.

Unit tests on metrics shaped as the stages write them (exact rows, every line within 120 columns), then the tiny
pipeline: a branch that changes one learning rate, reproduced (only the stages it touches), compared with main.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import LR, ROOT, copy_with_data, dvc_env, run, run_dvc

from embedlab import compare
from embedlab.compare import Score
from embedlab.evaluation import METRIC_KEYS

SETS = ["stsb_validation", "stsb_test", "sickr"]
TIMING_WORDS = ("second", "time", "duration", "per_s", "runtime")


def evaluate_stage():
    spec = importlib.util.spec_from_file_location("evaluate_stage", ROOT / "stages" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def details(val: float, test: float, sickr: float, half_width: float = 0.015) -> dict:
    """metrics/details/<model>.json as evaluation.evaluate_model_with_scores returns it (book keys, ci95)."""
    out: dict = {k: val - 0.001 * i for i, k in enumerate(METRIC_KEYS)}
    out["spearman_cosine"] = val
    for name, value in (("stsb_test", test), ("sickr", sickr)):
        out[name] = {**{k: value - 0.002 for k in METRIC_KEYS}, "spearman_cosine": value}
    out["ci95"] = {
        s: {"spearman_cosine": {"low": v - half_width, "high": v + half_width}}
        for s, v in zip(SETS, (val, test, sickr), strict=True)
    }
    return out


def headline_files(models: dict[str, tuple[float, float, float]]) -> dict[str, dict]:
    """``{path: data}`` as DVC returns the metrics files: evaluate headlines, one Twitter file, one stats file."""
    head = evaluate_stage().headline
    files = {f"metrics/{name}.json": head(details(*values), SETS) for name, values in models.items()}
    files["metrics/twitter-zero-shot.json"] = {
        "pit2015": {"average_precision": 0.719012},
        "twitter_url": {"average_precision": 0.771234},
        "twitterpara": {"average_precision": 0.745123},
    }
    files["metrics/cross_encoder.json"] = {"holdout": {"accuracy": 0.79, "ap": 0.74}, "train_seconds": 41.2}
    return files


MODELS = {
    "baseline": (0.8671634, 0.8203, 0.7716),
    "finetune-book": (0.8617, 0.8113, 0.7323),
    "augsbert-full-gold": (0.8128, 0.7662, 0.7356),
}


# --- the headline files ----------------------------------------------------------------------------------------


def test_headline_keeps_spearman_cosine_and_its_interval_per_set():
    metrics = details(0.86716341, 0.82031234, 0.77154321)
    metrics["ci95"]["sickr"]["spearman_cosine"] = {"low": math.nan, "high": math.nan}  # no interval: left out
    assert evaluate_stage().headline(metrics, SETS) == {
        "stsb_validation": {"spearman_cosine": 0.867163, "ci95_low": 0.852163, "ci95_high": 0.882163},
        "stsb_test": {"spearman_cosine": 0.820312, "ci95_low": 0.805312, "ci95_high": 0.835312},
        "sickr": {"spearman_cosine": 0.771543},
    }


def test_parse_headline_reads_both_stages_and_skips_statistics():
    files = headline_files(MODELS)
    assert compare.parse_headline(files["metrics/baseline.json"])["stsb_test"] == Score(
        "spearman_cosine", 0.8203, 0.8053, 0.8353
    )
    assert compare.parse_headline(files["metrics/twitter-zero-shot.json"]) == {
        "pit2015": Score("average_precision", 0.719012),
        "twitter_url": Score("average_precision", 0.771234),
        "twitterpara": Score("average_precision", 0.745123),
    }
    for stats in (files["metrics/cross_encoder.json"], {"steps": 40}, {"a": {"x": 1, "y": 2}}, {"a": {"ok": True}}, {}):
        assert compare.parse_headline(stats) is None, stats
    assert list(compare.headlines(files)) == [*MODELS, "twitter-zero-shot"]


def test_files_from_before_the_headline_split_read_as_their_headline():
    """A revision whose metrics/<model>.json held every book key compares equal to the same numbers split."""
    old_files = {f"metrics/{n}.json": details(*v) for n, v in MODELS.items()}
    old_files["metrics/twitter-zero-shot.json"] = {
        "pit2015_ap": 0.7190123, "twitter_url_ap": 0.7712341, "twitterpara_ap": 0.7451232,
    }  # fmt: skip
    old, new = compare.headlines(old_files), compare.headlines(headline_files(MODELS))
    assert old == new and list(old) == [*MODELS, "twitter-zero-shot"]
    assert compare.diff_headlines(old, new) == {}
    assert compare.legacy_headline({"holdout": {"accuracy": 0.8}, "train_seconds": 3.0}) is None


# --- show ------------------------------------------------------------------------------------------------------


def test_show_prints_one_row_per_model_and_a_table_per_kind_of_evaluation():
    text = compare.render_show(compare.headlines(headline_files(MODELS)), "main (1a2b3c4)")
    assert text.splitlines() == [
        "main (1a2b3c4): spearman_cosine [95 % bootstrap CI]",
        "",
        "model               stsb_validation        stsb_test              sickr",
        "baseline            0.8672 [0.852, 0.882]  0.8203 [0.805, 0.835]  0.7716 [0.757, 0.787]",
        "finetune-book       0.8617 [0.847, 0.877]  0.8113 [0.796, 0.826]  0.7323 [0.717, 0.747]",
        "augsbert-full-gold  0.8128 [0.798, 0.828]  0.7662 [0.751, 0.781]  0.7356 [0.721, 0.751]",
        "",
        "main (1a2b3c4): average_precision",
        "",
        "model              pit2015  twitter_url  twitterpara",
        "twitter-zero-shot  0.7190   0.7712       0.7451",
    ]
    assert "seconds" not in text and "holdout" not in text


def test_columns_past_120_characters_continue_below():
    header = ["model", *(f"set_{i}" for i in range(6))]
    rows = [["a-rather-long-model-name", *["0.8672 [0.852, 0.882]"] * 6]]
    lines = compare.table(header, rows)
    assert max(map(len, lines)) <= 120
    assert lines[0].split() == ["model", "set_0", "set_1", "set_2", "set_3"] and lines[2] == ""
    assert lines[3].split() == ["model", "set_4", "set_5"] and lines[4].startswith("a-rather-long-model-name  0.8672")


# --- diff ------------------------------------------------------------------------------------------------------


def test_diff_lists_only_changed_models_with_delta_and_the_outside_ci_mark():
    old = compare.headlines(headline_files(MODELS))
    new = compare.headlines(headline_files({**MODELS, "finetune-book": (0.8401, 0.8101, 0.7323)}))
    new["twitter-zero-shot"]["pit2015"] = Score("average_precision", 0.71903)  # +1.8e-05: not "+0.0000"
    changes = compare.diff_headlines(old, new)
    assert list(changes) == ["finetune-book", "twitter-zero-shot"]
    text = compare.render_diff(changes, "main (1a2b3c4)", "lr (5d6e7f8)")
    assert text.splitlines() == [
        "headline changes main (1a2b3c4) → lr (5d6e7f8)",
        "(old → new delta; * = new score outside the old 95 % bootstrap CI)",
        "",
        "spearman_cosine:",
        "model          stsb_validation           stsb_test                sickr",
        "finetune-book  0.8617 → 0.8401 -0.0216*  0.8113 → 0.8101 -0.0012  0.7323 =",
        "",
        "average_precision:",
        "model              pit2015                 twitter_url  twitterpara",
        "twitter-zero-shot  0.7190 → 0.7190 +2e-05  0.7712 =     0.7451 =",
    ]
    assert max(map(len, text.splitlines())) <= 120


def test_diff_of_equal_headlines_says_so_and_new_or_gone_models_are_rows():
    files = compare.headlines(headline_files(MODELS))
    assert compare.render_diff(compare.diff_headlines(files, files), "main", "workspace") == (
        "headline changes main → workspace: no headline changed\n"
    )
    fewer = {k: v for k, v in files.items() if k != "augsbert-full-gold"}
    changes = compare.diff_headlines(fewer, files)
    assert list(changes) == ["augsbert-full-gold"]
    row = compare.render_diff(changes, "a", "b").splitlines()[-1]
    assert row.split("  ")[0] == "augsbert-full-gold" and row.count("(new) ") == 3
    assert "(gone)" in compare.render_diff(compare.diff_headlines(files, fewer), "a", "b")
    wider = {**files, "baseline": {**files["baseline"], "sickr": Score("spearman_cosine", 0.7716, 0.75, 0.79)}}
    row = compare.render_diff(compare.diff_headlines(files, wider), "a", "b").splitlines()[-1]
    assert re.split(r"\s{2,}", row) == ["baseline", "0.8672 =", "0.8203 =", "= 0.7716 [0.750, 0.790]"]


def test_an_unknown_revision_is_one_error_and_exit_2(tmp_path):
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    run_dvc(tmp_path, "init", "-q")
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], tmp_path)
    for args in (["diff", "no-such-branch"], ["show", "main~5"], ["diff", "main", "nope"]):
        proc = subprocess.run(
            [sys.executable, "-m", "embedlab.compare", *args], cwd=tmp_path, capture_output=True, text=True,
            env=dvc_env(),
        )  # fmt: skip
        assert proc.returncode == 2, proc
        first, fix = proc.stderr.splitlines()
        assert first.startswith("error: unknown revision '") and fix.startswith("  fix: name a branch"), proc.stderr
        assert proc.stdout == ""
    proc = subprocess.run([sys.executable, "-m", "embedlab.compare", "show"], cwd=tmp_path, capture_output=True,
                          text=True, env=dvc_env())  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("workspace: no headline metrics"), proc


# --- review fixes: NaN, not measured yet, exps columns, -C, line widths -----------------------------------------


def test_nan_equals_nan_is_never_outside_and_nan_bounds_are_no_interval():
    nan = math.nan
    parsed = compare.parse_headline({"sickr": {"spearman_cosine": 0.77, "ci95_low": nan, "ci95_high": math.inf}})
    assert parsed == {"sickr": Score("spearman_cosine", 0.77)}
    old = {"m": {"sickr": Score("spearman_cosine", float("nan"))}}
    new = {"m": {"sickr": Score("spearman_cosine", float("nan"))}}  # a different NaN object: still the same score
    assert compare.diff_headlines(old, new) == {}
    assert compare.change_cell(old["m"]["sickr"], new["m"]["sickr"]) == "nan ="
    ci = Score("spearman_cosine", 0.8, 0.78, 0.82)
    assert not compare.outside(ci, Score("spearman_cosine", nan))
    assert compare.change_cell(ci, Score("spearman_cosine", nan)) == "0.8000 → nan +nan"  # changed, but no "*"


def test_a_file_missing_in_the_workspace_is_not_measured_yet_but_a_committed_one_stops():
    files = {
        "metrics/baseline.json": {"data": {"stsb_validation": {"spearman_cosine": 0.86}}},
        "metrics/finetune-new.json": {"error": FileNotFoundError(2, "No such file or directory")},
    }
    data, missing = compare.measured_files("workspace", files)
    assert list(data) == ["metrics/baseline.json"] and missing == ["metrics/finetune-new.json"]
    with pytest.raises(compare.EmbedlabError, match=r"^at main: cannot read metrics/finetune-new\.json \("):
        compare.measured_files("main", files)
    corrupt = {**files, "metrics/baseline.json": {"error": ValueError("JSON file structure is corrupted")}}
    with pytest.raises(compare.EmbedlabError, match="cannot read metrics/baseline.json"):
        compare.measured_files("workspace", corrupt)  # in the workspace too: only a missing file is "not measured"
    errors = {f"metrics/model-{i}.json": OSError(f"/very/long/{'x' * 150}/model-{i}.json") for i in range(4)}
    message = str(compare.EmbedlabError(compare.cannot_read("main", errors), compare._FETCH_FIX))
    lines = f"error: {message}".splitlines()
    assert lines[0].startswith("error: at main: cannot read metrics/model-0.json (OSError: /very/long/")
    assert lines[0].endswith(") and 3 more") and max(map(len, lines)) <= 120, lines


def test_not_measured_models_are_listed_under_show_and_dashed_in_diff():
    models = compare.headlines(headline_files(MODELS))
    text = compare.render_show(models, "workspace", ["finetune-improved"])
    assert text.splitlines()[-2:] == ["", "not measured yet: finetune-improved (`dvc repro` writes them)"]
    assert compare.render_show({}, "workspace", ["baseline"]).splitlines() == [
        "workspace: no headline metrics (evaluate stages not run yet? `dvc repro`)",
        "",
        "not measured yet: baseline (`dvc repro` writes them)",
    ]
    new = {k: v for k, v in models.items() if k != "finetune-book"}  # its file missing in the workspace
    lines = compare.render_diff(
        compare.diff_headlines(models, new), "main", "workspace", ["finetune-book"]
    ).splitlines()
    assert re.split(r"\s{2,}", lines[5]) == ["finetune-book", "0.8617 → –", "0.8113 → –", "0.7323 → –"]
    assert "(gone)" not in "\n".join(lines) and lines[-1].startswith("not measured yet: finetune-book")
    many = [f"a-model-with-a-long-name-{i}" for i in range(12)]
    assert max(map(len, compare.render_show(models, "workspace", many).splitlines())) <= 120


EXP_HEAD = ["Experiment", "rev", "typ", "Created", "parent", "State", "Executor"]


def exp_csv(columns: list[str], rows: list[tuple[str, str, list[str]]]) -> str:
    """``dvc exp show --csv``: meta columns, then ``columns``; a row is (experiment, rev, values)."""
    lines = [",".join([*EXP_HEAD, *columns])]
    for name, rev, values in rows:
        lines.append(",".join([name, rev, "baseline" if not name else "branch_commit", "", "", "", "", *values]))
    return "\n".join(lines) + "\n"


def metric_columns(prefix: str, sets: list[str] = SETS) -> list[str]:
    return [f"{prefix}{s}.{k}" for s in sets for k in ("spearman_cosine", "ci95_low", "ci95_high")]


def scores(base: float, n_sets: int = 3) -> list[str]:
    return [
        f"{v:.6f}" for i in range(n_sets) for v in (base - 0.01 * i, base - 0.01 * i - 0.015, base - 0.01 * i + 0.015)
    ]


def test_exps_lower_block_keeps_experiment_and_model_and_long_values_are_cut():
    local_dir = "/home/someone/projects/embedlab/worktrees/shared/data"
    columns = [
        *metric_columns("metrics/baseline.json:"),
        *metric_columns("metrics/finetune-book.json:"),
        "data.local_dir",
        "finetune.recipes.book.learning_rate",
        "finetune.recipes.improved.learning_rate",
    ]
    rows = [
        ("", "workspace", [*scores(0.86), *scores(0.80), "../shared/data", "5e-05", "2e-05"]),
        ("lr-high", "", [*scores(0.85), *scores(0.81), local_dir, "0.0001", "2e-05"]),
        ("lr-low", "", [*scores(0.84), *scores(0.82), local_dir, "2e-05", "2e-05"]),
    ]
    lines = compare.render_exps(exp_csv(columns, rows)).splitlines()
    assert max(map(len, lines)) <= 120, lines
    assert lines[3].split()[:4] == ["experiment", "local_dir", "book.learning_rate", "model"]
    lower = lines[lines.index("", 4) + 1 :]  # the block the sets that did not fit continue in
    assert lower[0].split()[:2] == ["experiment", "model"] and len(lower) == 7, lines
    assert [row.split()[:2] for row in lower[1:]] == [
        [e, m] for e in ("workspace", "lr-high", "lr-low") for m in ("baseline", "finetune-book")
    ]
    row = re.split(r"\s{2,}", lines[6])  # lr-high, baseline
    assert row[:4] == ["lr-high", compare.shorten(local_dir, 30), "0.0001", "baseline"] and len(row[1]) == 30
    assert row[1].startswith("/home/someone/") and row[1].endswith("shared/data") and "…" in row[1]


def test_exps_reads_metric_columns_dvc_left_unprefixed():
    """One model evaluated: DVC names its columns `stsb_validation.spearman_cosine`, without the file."""
    columns = [*metric_columns(""), "finetune.recipes.book.learning_rate"]
    csv_text = exp_csv(columns, [("", "workspace", [*scores(0.86), "5e-05"]), ("lr", "", [*scores(0.84), "3e-05"])])
    book = {"metrics/finetune-book.json": compare.parse_headline({s: {"spearman_cosine": 0.8} for s in SETS})}
    lines = compare.render_exps(csv_text, lambda: book).splitlines()
    assert lines[3].split() == ["experiment", "learning_rate", "model", *SETS]
    assert re.split(r"\s{2,}", lines[5])[:4] == ["lr", "3e-05", "finetune-book", "0.8400 [0.825, 0.855]"]
    twitter = {"metrics/twitter-zero-shot.json": compare.parse_headline({"pit2015": {"average_precision": 0.7}})}
    assert "finetune-book" in compare.render_exps(csv_text, lambda: {**twitter, **book})  # the file holding the set
    for known in ({}, {**book, "metrics/baseline.json": book["metrics/finetune-book.json"]}):
        with pytest.raises(compare.EmbedlabError) as err:
            compare.render_exps(csv_text, lambda known=known: known)
        assert "\n" not in str(err.value) and len(f"error: {err.value}") <= 120, err.value


def test_exps_columns_are_every_set_any_row_has_in_evaluate_sets_order():
    columns = metric_columns("metrics/m.json:", ["sickr", "stsb_validation", "stsb_test"])
    only_val = ["", "", "", *scores(0.86, 1), "", "", ""]
    rows = [("", "workspace", only_val), ("full", "", [*scores(0.80, 3)])]
    lines = compare.render_exps(exp_csv(columns, rows)).splitlines()
    assert lines[3].split() == ["experiment", "model", *SETS]
    assert re.split(r"\s{2,}", lines[4])[2:] == ["0.8600 [0.845, 0.875]", "–", "–"]


def test_dash_c_goes_before_or_after_the_subcommand():
    parse = compare.parser().parse_args
    assert parse(["show", "-C", "repo"]).root == "repo" and parse(["-C", "repo", "show", "main"]).root == "repo"
    assert parse(["diff", "main", "lr", "-C", "r"]).root == "r" and parse(["exps", "-C", "r"]).root == "r"
    assert parse(["diff", "main"]).root == "." and parse(["-C", "a", "exps"]).root == "a"


def test_error_fix_lines_fit_120_columns():
    assert compare.unknown_revision_fix("lr-typo") == (
        "name a branch, tag or commit (`git branch -a`); an experiment: `dvc exp branch lr-typo lr-typo` first"
    )
    for rev in ("lr-typo", "a-very-long-experiment-name-indeed"):
        assert len(f"  fix: {compare.unknown_revision_fix(rev)}") <= 120
    assert len(f"  fix: {compare._FETCH_FIX}") <= 120
    readme = (ROOT / "README.md").read_text()
    assert f"  fix: {compare.unknown_revision_fix('lr-typo')}\n" in readme


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_make_compare_takes_a_and_b_from_the_command_line_only():
    def diff_line(*args: str) -> str:
        env = {k: v for k, v in dvc_env().items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        env.update(A="from-env-a", B="from-env-b")  # exported: not a side of the comparison
        out = run(["make", "-n", "-f", str(ROOT / "Makefile"), "compare", *args], ROOT, env=env).stdout
        return next(line for line in out.splitlines() if "embedlab.compare diff" in line).split("diff", 1)[1].split()

    assert diff_line() == ["HEAD"]
    assert diff_line("A=main", "B=lr") == ["main", "lr"]


# --- on the tiny pipeline --------------------------------------------------------------------------------------


def compare_cli(repo: Path, *args: str) -> str:
    return run([sys.executable, "-m", "embedlab.compare", *args], repo).stdout


def expected_change(old: dict, new: dict) -> list[str]:
    """The diff cells of one STS model, computed from its two headline files."""
    cells = []
    for eval_set in SETS:
        a, b = old[eval_set]["spearman_cosine"], new[eval_set]["spearman_cosine"]
        mark = "" if old[eval_set]["ci95_low"] <= b <= old[eval_set]["ci95_high"] else "*"
        delta = f"{b - a:+.4f}" if abs(b - a) >= 0.00005 else f"{b - a:+.0e}"
        cells.append(f"{b:.4f} =" if a == b else f"{a:.4f} → {b:.4f} {delta}{mark}")
    return cells


def test_diff_between_branches_names_exactly_the_retrained_model(lr_branch):
    repo, old = lr_branch.repo, lr_branch.main_headline
    new = json.loads((repo / "metrics" / "finetune-book.json").read_text())
    text = compare_cli(repo, "diff", "main", "lr")
    lines = text.splitlines()
    assert re.fullmatch(r"headline changes main \([0-9a-f]+\) → lr \([0-9a-f]+\)", lines[0]), lines[0]
    assert lines[3] == "spearman_cosine:" and lines[4].split() == ["model", *SETS]
    assert len(lines) == 6, text  # title, legend, blank, metric, header and one model: nothing else changed
    assert re.split(r"\s{2,}", lines[5]) == ["finetune-book", *expected_change(old, new)]
    assert not any(word in text for word in TIMING_WORDS) and max(map(len, lines)) <= 120
    # B defaults to the workspace (here: lr's outputs); between equal revisions nothing is listed
    workspace = compare_cli(repo, "diff", "main").splitlines()
    assert workspace[0].endswith("→ workspace") and workspace[1:] == lines[1:]
    assert compare_cli(repo, "diff", "lr").endswith(": no headline changed\n")

    # DVC's own diff lists the headline only: per set the score and its CI bounds, no timing field
    dvc_diff = json.loads(run_dvc(repo, "metrics", "diff", "main", "lr", "--json").stdout)
    assert list(dvc_diff) == ["metrics/finetune-book.json"], dvc_diff
    assert set(dvc_diff["metrics/finetune-book.json"]) <= {
        f"{s}.{k}" for s in SETS for k in ("spearman_cosine", "ci95_low", "ci95_high")
    }

    shown = compare_cli(repo, "show", "main").splitlines()
    assert max(map(len, shown)) <= 120 and shown[0].startswith("main (") and shown[2].split() == ["model", *SETS]
    models = yaml.safe_load((repo / "params.yaml").read_text())["evaluate"]["models"]
    twitter = {f"twitter-{v}" for v in ("zero-shot", "domain-tsdae", "domain-finetune", "domain-adapted")}
    rows = {line.split()[0] for line in shown if line and not line.startswith(("model", "main ("))}
    assert rows == set(models) | twitter
    book = next(line for line in shown if line.startswith("finetune-book "))
    assert re.split(r"\s{2,}", book)[1] == (
        f"{old['stsb_validation']['spearman_cosine']:.4f} "
        f"[{old['stsb_validation']['ci95_low']:.3f}, {old['stsb_validation']['ci95_high']:.3f}]"
    )


def makefile_recipe(target: str) -> str:
    """The shell line of a Makefile target, with $(BIN) this interpreter's folder: what `make <target>` runs."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe = lines[lines.index(next(x for x in lines if x.startswith(f"{target}:"))) + 1]
    return recipe.strip().lstrip("@").replace("$(BIN)", str(Path(sys.executable).parent)).replace("$$", "$")


def test_make_exps_shows_the_changed_param_and_headline_of_an_experiment(lr_branch, tmp_path):
    repo, old = copy_with_data(lr_branch.repo, tmp_path), lr_branch.main_headline
    new = json.loads((repo / "metrics" / "finetune-book.json").read_text())
    # an experiment on lr back at main's learning rate: the run-cache restores main's stages, nothing trains
    out = run_dvc(repo, "exp", "run", "-n", "lr-back", "-S", f"{LR}=5e-05").stdout
    assert "Running stage" not in out, out
    text = run(["bash", "-c", makefile_recipe("exps")], repo).stdout
    shutil.rmtree(tmp_path, ignore_errors=True)  # a copy holds every model twice
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120, text
    assert lines[2] == "spearman_cosine:" and lines[3].split() == ["experiment", "book.learning_rate", "model", *SETS]
    rows = {line.split()[0]: re.split(r"\s{2,}", line)[1:] for line in lines[4:]}
    assert set(rows) == {"workspace", "lr", "lr-back"}, text  # each experiment and its baseline: one model changed
    assert rows["lr"][:2] == ["3e-05", "finetune-book"] and rows["lr-back"][:2] == ["5e-05", "finetune-book"]
    for row, headline in ((rows["lr"], new), (rows["lr-back"], old)):
        assert row[2:] == [
            f"{headline[s]['spearman_cosine']:.4f} [{headline[s]['ci95_low']:.3f}, {headline[s]['ci95_high']:.3f}]"
            for s in SETS
        ]
    assert not any(word in text for word in TIMING_WORDS)
