"""Reliability: a table of bad inputs (params and data), each failing fast and cleanly without touching outputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from conftest import dvc_env, make_repo, run

OUTPUT_DIRS = ("data", "models", "metrics")


def snapshot(repo: Path) -> dict[str, str]:
    """sha256 of every file under the output folders (and of the folders' listing)."""
    out = {}
    for top in OUTPUT_DIRS:
        for path in sorted((repo / top).rglob("*")) if (repo / top).exists() else []:
            rel = path.relative_to(repo).as_posix()
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, data_dir) -> Path:
    """A tiny-profile repo whose prepare stage and baseline evaluation have run once."""
    repo = make_repo(tmp_path_factory.mktemp("reliability"))
    run([sys.executable, "stages/prepare.py"], repo, env=dvc_env())
    return repo


def edit(raw: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()

# (id, stage args, params edits {dotted: value} or raw text, expected message parts)
PARAM_CASES = [
    ("typo-top-level-key", ["prepare.py"], {"sed": 1}, ["unknown key 'sed'", "allowed here"]),
    ("typo-nested-key", ["prepare.py"], {"prepare.nli_sizee": 10}, ["unknown key 'prepare.nli_sizee'"]),
    ("missing-key", ["prepare.py"], {"prepare.nli_size": DELETE}, ["missing key 'prepare.nli_size'"]),
    ("string-for-int", ["prepare.py"], {"prepare.nli_size": "400"}, ["prepare.nli_size = '400'", "integer"]),
    ("negative-size", ["prepare.py"], {"prepare.gold_size": -3}, ["prepare.gold_size = -3", "greater than 0"]),
    ("zero-size", ["prepare.py"], {"prepare.tsdae_rows": 0}, ["prepare.tsdae_rows = 0", "greater than 0"]),
    ("gold-plus-silver-too-big", ["prepare.py"], {"prepare.silver_size": 390}, ["gold_size + silver_size = 490"]),
    ("tsdae-rows-too-big", ["prepare.py"], {"prepare.tsdae_rows": 401}, ["tsdae_rows = 401 exceeds nli_size"]),
    ("unknown-source", ["prepare.py"], {"data.source": "s3"}, ["data.source = 's3'", "'auto', 'hub' or 'local'"]),
    (
        "unknown-eval-set",
        ["evaluate.py", "baseline"],
        {"evaluate.sets": ["stsb_validation", "sts12"]},
        ["evaluate.sets.1 = 'sts12'", "'stsb_validation', 'stsb_test' or 'sickr'"],
    ),
    (
        "eval-without-validation",
        ["evaluate.py", "baseline"],
        {"evaluate.sets": ["sickr"]},
        ["must include stsb_validation"],
    ),
    ("float-batch-size", ["evaluate.py", "baseline"], {"evaluate.batch_size": 1.5}, ["evaluate.batch_size = 1.5"]),
    (
        "unknown-model-name",
        ["evaluate.py", "baseline"],
        {"evaluate.models.baseline.model": "bert-base-uncasedd"},
        ["'bert-base-uncasedd' is not a local folder"],
    ),
    (
        "missing-model-path",
        ["evaluate.py", "baseline"],
        {"evaluate.models.baseline.model": "models/never-trained"},
        ["models/never-trained does not exist"],
    ),
    ("model-not-in-params", ["evaluate.py", "nosuchmodel"], {}, ["NAME one of", "baseline"]),
    # Values that passed the schema and then crashed minutes in: seeds outside [0, 2**32) and infinities.
    ("negative-seed", ["prepare.py"], {"seed": -1}, ["seed = -1", "greater than or equal to 0"]),
    ("seed-past-2-32", ["finetune.py", "book"], {"seed": 2**32}, ["seed = 4294967296", "less than or equal to"]),
    (
        "negative-bootstrap-seed",
        ["evaluate.py", "baseline"],
        {"evaluate.bootstrap.seed": -5},
        ["evaluate.bootstrap.seed = -5", "greater than or equal to 0"],
    ),
    (
        "infinite-epochs",
        ["finetune.py", "book"],
        {"finetune.recipes.book.epochs": float("inf")},
        ["finetune.recipes.book.epochs = inf", "finite number"],
    ),
    (
        "infinite-learning-rate",
        ["finetune.py", "book"],
        {"finetune.recipes.book.learning_rate": float("inf")},
        ["finetune.recipes.book.learning_rate = inf", "finite number"],
    ),
    (
        "nan-warmup",
        ["train_augsbert.py", "augsbert", "data/silver/labeled.parquet"],
        {"train_augsbert.warmup": float("nan")},
        ["train_augsbert.warmup = nan", "finite number"],
    ),
    # PyYAML keeps the last of two equal keys; DVC refuses the file: the stages refuse it too, naming the line.
    ("duplicate-key", ["prepare.py"], lambda text: text + "\nseed: 7\n", ["duplicate key 'seed'", "line"]),
    ("yaml-not-a-mapping", ["prepare.py"], "- just\n- a list\n", ["must be a YAML mapping"]),
    ("yaml-syntax-error", ["prepare.py"], "prepare: {nli_size: 400\n", ["is not valid YAML"]),
    # Mixed precision that cannot run here (the test hides any GPU), refused at load time, not after data loading.
    (
        "fp16-true-without-gpu",
        ["finetune.py", "book"],
        {"finetune.recipes.book.fp16": True},
        ["finetune.recipes.book.fp16 = True", "needs a CUDA GPU", "allowed here: auto | false"],
    ),
    (
        "bf16-true-without-gpu",
        ["train_augsbert.py", "augsbert", "data/silver/labeled.parquet"],
        {"train_augsbert.bf16": True},
        ["train_augsbert.bf16 = True", "needs a CUDA GPU", "allowed here: auto | false"],
    ),
    (
        "bf16-not-a-choice",
        ["prepare.py"],
        {"cross_encoder.bf16": "yes"},
        ["cross_encoder.bf16 = 'yes'", "allowed: auto | true | false"],
    ),
    # A batch of 1 leaves MNRL-style losses no in-batch negatives; every stage refuses it, not only the one training.
    *(
        (
            f"batch-1-{key}",
            args,
            {f"{key}.batch_size": 1},
            [f"{key}.batch_size = 1: must be >= 2", "in-batch negatives"],
        )
        for key, args in [
            ("train_scratch.losses.mnrl", ["train_scratch.py", "mnrl"]),
            ("finetune.recipes.book", ["finetune.py", "book"]),
            ("finetune.recipes.improved", ["finetune.py", "improved"]),
            ("unsupervised.simcse", ["prepare.py"]),
            ("unsupervised.ct", ["evaluate.py", "baseline"]),
            ("domain.finetune", ["adapt_finetune.py", "finetune", "models/base/all-MiniLM-L6-v2"]),
        ]
    ),
]


@pytest.mark.parametrize(("case", "args", "change", "needles"), PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_bad_params(prepared, case, args, change, needles):
    params = prepared / "params.yaml"
    original = params.read_text()
    before = snapshot(prepared)
    try:
        if isinstance(change, str):
            params.write_text(change)
        elif callable(change):
            params.write_text(change(original))
        else:
            raw = yaml.safe_load(original)
            for dotted, value in change.items():
                edit(raw, dotted, value)
            params.write_text(yaml.safe_dump(raw, sort_keys=False))
        proc = run(
            [sys.executable, f"stages/{args[0]}", *args[1:]],
            prepared,
            check=False,
            env=dvc_env() | {"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""},  # the same answers on a GPU machine
        )
    finally:
        params.write_text(original)
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_error(proc.stderr, needles)
    assert snapshot(prepared) == before


def assert_one_clear_error(stderr: str, needles: list[str]) -> None:
    """The problem on one ``error:`` line (naming key or file), then at most its ``fix:`` line; no traceback."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  fix: ")), stderr
    for needle in needles:
        assert needle in stderr


def write(folder: Path, rel: str, content: str | bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def good_folder(folder: Path, data_dir: Path) -> Path:
    """A data folder of symlinks to the real files, which a case then breaks one at a time."""
    for sub in ("stsb", "mnli", "snli", "sick"):
        (folder / sub).mkdir(parents=True)
        for f in (data_dir / sub).iterdir():
            os.symlink(f, folder / sub / f.name)
    return folder


def replace(folder: Path, rel: str, content: str | bytes) -> None:
    (folder / rel).unlink()
    write(folder, rel, content)


NLI_HEADER = "pairID,sentence1,sentence2,label\n"
DATA_CASES = [
    ("folder-does-not-exist", "missing", ["does not exist", "data.local_dir"]),
    ("stsb-file-missing", lambda f: (f / "stsb" / "sts-dev.csv").unlink(), ["no STS-B validation file"]),
    (
        "nli-wrong-columns",
        lambda f: replace(f, "snli/snli_1.0_dev.csv", "id,a,b\n1,x,y\n"),
        ["snli_1.0_dev.csv lacks the NLI columns"],
    ),
    (
        "nli-unknown-label",
        lambda f: replace(f, "snli/snli_1.0_test.csv", NLI_HEADER + "1,A.,B.,maybe\n"),
        ["snli_1.0_test.csv: line 2: label 'maybe'"],
    ),
    (
        "nli-empty-sentence",
        lambda f: replace(f, "snli/snli_1.0_test.csv", NLI_HEADER + "1,A.,  ,neutral\n"),
        ["snli_1.0_test.csv: line 2: empty sentence2"],
    ),
    (
        "sts-score-out-of-range",
        lambda f: replace(f, "stsb/sts-dev.csv", "g\tf\ty\t1\t6.0\tA.\tB.\n"),
        ["sts-dev.csv: line 1: score 6.0 outside 0.0-5.0"],
    ),
    (
        "sts-non-utf8",
        lambda f: replace(f, "stsb/sts-test.csv", b"g\tf\ty\t1\t3.0\tA\xe9.\tB.\n"),
        ["sts-test.csv: line 1 is not valid UTF-8"],
    ),
    ("sick-wrong-columns", lambda f: replace(f, "sick/SICK.txt", "a\tb\n1\t2\n"), ["SICK.txt lacks column(s)"]),
    # Hangs: links back to a parent folder (os.walk followed them for minutes); a FIFO in place of a file.
    ("symlink-loops", lambda f: [os.symlink("..", f / d / "up") for d in ("stsb", "sick")], ["/up is a symlink loop"]),
    ("fifo-for-a-file", lambda f: unlink_then(f, "stsb/sts-dev.csv", os.mkfifo), ["sts-dev.csv is not a regular file"]),
    (
        "file-linked-to-itself",
        lambda f: unlink_then(f, "snli/snli_1.0_dev.csv", lambda p: os.symlink(p.name, p)),
        ["snli_1.0_dev.csv is a symlink loop"],
    ),
    # Broken files that used to pass with fewer rows (exit 0, different data).
    (
        "nli-file-is-a-folder",
        lambda f: unlink_then(f, "snli/snli_1.0_test.csv", Path.mkdir),
        ["snli_1.0_test.csv is a directory"],
    ),
    (
        "nli-file-missing",
        lambda f: (f / "snli" / "snli_1.0_test.csv").unlink(),
        ["NLI dev/test pool", "lacks snli_1.0_test.csv"],
    ),
    (
        "nli-label-field-cut-off",
        lambda f: cut(f, "mnli/multinli_1.0_dev_matched.csv", lines=3, tail="9n,A cat.,An animal.\n"),
        ["multinli_1.0_dev_matched.csv: line 4 has 3 fields, the header has 4"],
    ),
    (
        "nli-cut-inside-a-quoted-field",
        lambda f: cut(f, "mnli/multinli_1.0_dev_matched.csv", lines=3, tail='9n,"A cat\n'),
        ["multinli_1.0_dev_matched.csv: line", "unexpected end of data", "cut short"],
    ),
    (
        "sts-cut-inside-its-last-column",
        lambda f: cut(f, "stsb/sts-dev.csv", lines=700, tail="main-forums\tdeft\t2014\t1\t2.0\tA cat.\tAn ani"),
        ["sts-dev.csv: line 701 has no line end", "cut short"],
    ),
    ("data-dir-is-a-file", "file", ["local data folder", "is not a folder"]),
]


def unlink_then(folder: Path, rel: str, make) -> None:
    (folder / rel).unlink()
    make(folder / rel)


def cut(folder: Path, rel: str, lines: int, tail: str) -> None:
    """The first ``lines`` lines of the real file plus ``tail``: a download or copy that stopped part-way."""
    head = (folder / rel).read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
    replace(folder, rel, "".join(head) + tail)


@pytest.mark.parametrize(("case", "breaker", "needles"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data(prepared, tmp_path, data_dir, case, breaker, needles):
    env = dvc_env() | {"HF_HUB_OFFLINE": "1"}
    if breaker == "missing":
        env["EMBEDLAB_DATA_DIR"] = str(tmp_path / "missing")
    elif breaker == "file":
        (tmp_path / "data.csv").write_text("a file\n")
        env["EMBEDLAB_DATA_DIR"] = str(tmp_path / "data.csv")
    else:
        folder = good_folder(tmp_path / "data", data_dir)
        breaker(folder)
        env["EMBEDLAB_DATA_DIR"] = str(folder)
    before = snapshot(prepared)
    proc = run([sys.executable, "stages/prepare.py"], prepared, check=False, env=env, timeout=120)  # no hang
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_error(proc.stderr, needles)
    assert snapshot(prepared) == before


def twitter_folder(folder: Path, data_dir: Path) -> Path:
    """A data folder whose twitterpara files are copies of the real ones, which a case then breaks."""
    shutil.copytree(data_dir / "twitterpara", folder / "twitterpara")
    return folder


URL = "twitterpara/url/Twitter_URL_Corpus_test.txt"
DOMAIN_CASES = [
    ("url-empty", lambda f: replace(f, URL, ""), ["Twitter_URL_Corpus_test.txt: no labelled pairs read"]),
    (
        "url-comma-separated",
        lambda f: replace(f, URL, "Headline one,A tweet,(5,6),https://t.co/a\n"),
        ["Twitter_URL_Corpus_test.txt:1: expected 'sentence1<TAB>sentence2<TAB>(n,6)<TAB>url'"],
    ),
    (
        "pit-label-is-a-fifo",
        lambda f: unlink_then(f, "twitterpara/pit2015/test.label", os.mkfifo),
        ["test.label is not a regular file"],
    ),
    (
        "pit-dev-cut-short",
        lambda f: cut(f, "twitterpara/pit2015/dev.data", lines=100, tail="1\tT\tA tweet"),
        ["dev.data: line 101 has no line end"],
    ),
]


@pytest.mark.parametrize(("case", "breaker", "needles"), DOMAIN_CASES, ids=[c[0] for c in DOMAIN_CASES])
def test_bad_twitter_data(prepared, tmp_path, data_dir, case, breaker, needles):
    folder = twitter_folder(tmp_path / "data", data_dir)
    breaker(folder)
    before = snapshot(prepared)
    env = dvc_env() | {"HF_HUB_OFFLINE": "1", "EMBEDLAB_DATA_DIR": str(folder)}
    proc = run([sys.executable, "stages/domain_corpus.py"], prepared, check=False, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert_one_clear_error(proc.stderr, needles)
    assert snapshot(prepared) == before


def test_outputs_are_readable_by_the_group(prepared):
    """Written with the user's umask (022 here: 0644 files), not tempfile's private 0600."""
    import stat

    from embedlab.io import umask

    files = [p for top in ("data", "metrics") for p in (prepared / top).rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask()}


def test_atomic_outputs_follow_the_umask(tmp_path):
    import stat

    from embedlab.io import atomic_path, umask, write_json

    old = os.umask(0o027)
    try:
        assert umask() == 0o027
        write_json(tmp_path / "m.json", {"a": 1})
        with atomic_path(tmp_path / "model", is_dir=True) as tmp:
            (tmp / "w.bin").write_bytes(b"x")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "m.json", tmp_path / "model")}
    assert modes == {"m.json": 0o640, "model": 0o750}


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """KeyboardInterrupt inside a stage: one line on stderr, status 130 as a shell gives, no traceback."""
    script = tmp_path / "stage.py"
    script.write_text(
        "import os, signal, time\n"
        "from embedlab.errors import run_stage\n"
        "def main():\n"
        "    signal.signal(signal.SIGINT, signal.default_int_handler)  # a background launch inherits it ignored\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(60)\n"
        "run_stage(main)\n"
    )
    env = dvc_env() | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("EMBEDLAB_WARM", None)
    proc = run([sys.executable, str(script)], tmp_path, check=False, env=env, timeout=60)
    assert proc.returncode == 130
    assert proc.stderr.splitlines() == [
        "error: interrupted; nothing was published (a training run resumes from its last checkpoint)"
    ]


def test_truncated_parquet_is_named(prepared):
    target = prepared / "data" / "eval" / "stsb_validation.parquet"
    original = target.read_bytes()
    try:
        target.write_bytes(original[: len(original) // 2])
        before = snapshot(prepared)
        proc = run([sys.executable, "stages/evaluate.py", "baseline"], prepared, check=False, env=dvc_env())
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "stsb_validation.parquet is not a readable parquet file" in proc.stderr
        assert snapshot(prepared) == before
    finally:
        target.write_bytes(original)


def test_subset_larger_than_data(prepared):
    params = prepared / "params.yaml"
    original = params.read_text()
    raw = yaml.safe_load(original)
    raw["prepare"]["nli_size"] = 50000
    before = snapshot(prepared)
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        proc = run([sys.executable, "stages/prepare.py"], prepared, check=False, env=dvc_env())
    finally:
        params.write_text(original)
    assert proc.returncode == 2 and "only 39313" in proc.stderr and "prepare.nli_size" in proc.stderr
    assert snapshot(prepared) == before


def test_prepare_is_deterministic(prepared):
    first = {k: v for k, v in snapshot(prepared).items() if k.endswith((".parquet", ".json"))}
    run([sys.executable, "stages/prepare.py"], prepared, env=dvc_env())
    second = {k: v for k, v in snapshot(prepared).items() if k.endswith((".parquet", ".json"))}
    assert first and first == second


# --- interruption: a killed training stage leaves nothing that looks complete, and a re-run resumes ------------


def test_a_checkpoint_cut_short_while_saving_is_skipped(tmp_path):
    from embedlab.training import last_complete_checkpoint

    for step, state in ((3, '{"global_step": 3}'), (6, '{"global_st')):  # step 6: killed while writing its state
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-9").mkdir()  # killed before anything but the weights
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3"]
    assert last_complete_checkpoint(tmp_path / "checkpoint-3") is None


STAGE = "finetune@book"
MODEL = Path("models/finetune-book")


def interruptible_repo(dest: Path) -> Path:
    """A tiny-profile repo whose finetune@book runs 10 steps and checkpoints every 3 (no evaluation in between)."""
    repo = make_repo(dest)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["finetune"]["recipes"]["book"].update(max_rows=160, save_steps=3, eval_steps=None)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run(["git", "commit", "-qam", "checkpoint every 3 steps"], repo)
    return repo


def leftovers(repo: Path) -> list[str]:
    """Temporary outputs of ``embedlab.io.atomic_path`` (``.<name>.tmp-*``, ``.<name>.old-*``) anywhere in the repo."""
    return sorted(
        str(p.relative_to(repo))
        for top in ("data", "models", "metrics", "plots")
        if (repo / top).exists()
        for p in (repo / top).rglob(".*")
        if ".tmp-" in p.name or ".old-" in p.name
    )


def set_book(repo: Path, **values) -> None:
    """Edit ``finetune.recipes.book`` in the repo's params.yaml (uncommitted, as a user would)."""
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["finetune"]["recipes"]["book"].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def book_learning_rate(repo: Path) -> float:
    return float(yaml.safe_load((repo / "params.yaml").read_text())["finetune"]["recipes"]["book"]["learning_rate"])


def model_sha(repo: Path) -> str:
    return hashlib.sha256((repo / MODEL / "model.safetensors").read_bytes()).hexdigest()


def kill_after_a_checkpoint(repo: Path, log_path: Path) -> None:
    """Run ``dvc repro finetune@book`` and SIGKILL it (dvc, the stage, its children) once a checkpoint is complete."""
    import signal
    import subprocess
    import time

    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", STAGE],
            cwd=repo,
            env=dvc_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes dvc, the stage and its children
        )
        deadline = time.monotonic() + 480
        checkpoints = repo / "checkpoints" / "finetune-book"
        while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "no checkpoint within 8 minutes"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (repo / MODEL).exists(), "a killed stage must not leave its model"


@pytest.fixture(scope="module")
def uninterrupted_sha(tmp_path_factory, data_dir) -> str:
    """sha256 of finetune@book's model in an interruptible repo reproduced without interruption."""
    clean = interruptible_repo(tmp_path_factory.mktemp("clean"))
    run([sys.executable, "-m", "dvc", "repro", STAGE], clean)
    return model_sha(clean)


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_model(tmp_path, uninterrupted_sha):
    import json

    repo = interruptible_repo(tmp_path / "killed")
    kill_after_a_checkpoint(repo, tmp_path / "killed.log")
    status = json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo).stdout or "{}")
    assert STAGE in status, status  # not reported up to date

    out = run([sys.executable, "-m", "dvc", "repro", STAGE], repo).stdout
    assert "resuming from" in out and "checkpoint-" in out and "starting over" not in out, out
    assert (repo / MODEL / "model.safetensors").is_file()
    assert STAGE not in json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], repo).stdout or "{}")
    assert leftovers(repo) == [] and not (repo / "checkpoints" / "finetune-book").exists()
    assert model_sha(repo) == uninterrupted_sha, "the resumed run must give the uninterrupted model, byte for byte"


@pytest.mark.slow
def test_killed_training_is_not_resumed_under_another_learning_rate(tmp_path, uninterrupted_sha):
    """The issue's case: killed at one learning rate, re-run at another, the old checkpoints must not be used."""
    repo = interruptible_repo(tmp_path / "changed")
    learning_rate = book_learning_rate(repo)
    set_book(repo, learning_rate=learning_rate * 10)
    kill_after_a_checkpoint(repo, tmp_path / "changed.log")
    set_book(repo, learning_rate=learning_rate)

    out = run([sys.executable, "-m", "dvc", "repro", STAGE], repo).stdout
    expected = "checkpoints/finetune-book were made by another run (changed: learning_rate); starting over"
    assert expected in out and "resuming from" not in out, out
    assert leftovers(repo) == [] and not (repo / "checkpoints" / "finetune-book").exists()
    assert model_sha(repo) == uninterrupted_sha, "the rerun must give the model of its own learning rate"
