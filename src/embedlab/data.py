"""The data layer: one function per dataset, each returning a ``datasets.Dataset`` with the book's columns.

* NLI (MNLI, SNLI): ``premise``, ``hypothesis``, ``label`` (0 entailment, 1 neutral, 2 contradiction: GLUE's ids).
* STS-B and SICK-R: ``sentence1``, ``sentence2``, ``score`` on the dataset's own scale (STS-B 0-5, SICK 1-5).

Two sources behind the same call:

* ``hub`` runs the book's ``load_dataset("glue", ...)`` calls, at the commits pinned in ``data.revisions``
  (:mod:`embedlab.hub_data`, imported only on that path);
* ``local`` reads a folder holding the public files (STS Benchmark ``sts-*.csv`` or GLUE ``STS-B/*.tsv``;
  MultiNLI/SNLI ``.csv``/``.jsonl``/``.txt``; GLUE ``MNLI/*.tsv``; ``SICK.txt``). Since MNLI *train* is not
  public outside the Hub, the local NLI pool falls back to MNLI dev matched+mismatched and SNLI dev+test
  (39,313 labelled pairs) and says so in its info dict.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab.errors import DataError
from embedlab.hub import hub_reachable
from embedlab.io import read_input_lines
from embedlab.nli import NLI_LABELS

# SNLI/MNLI mark pairs without annotator agreement with "-": every loader (GLUE's included) drops them.
NO_GOLD_LABEL = {"-", ""}

LOCAL_FIX = (
    "set data.local_dir in params.yaml to the folder holding the public files (a dvc.yaml dependency; layout: "
    "README, section 'Data'); `export EMBEDLAB_DATA_DIR=/path/to/data` points stage scripts run by hand there"
)


@dataclass(frozen=True)
class Source:
    """Where raw data is read from: ``kind`` is ``hub`` or ``local`` (then ``root`` is the folder)."""

    kind: str
    root: Path | None = None
    revisions: tuple[tuple[str, str], ...] = ()  # hub: (dataset, commit) pairs, from data.revisions


def resolve_source(source: str, local_dir: Path | None, revisions: dict[str, str] | None = None) -> Source:
    """Pick the data source, failing fast (no 25 s of retries) when neither the Hub nor a folder is usable."""
    if source not in {"auto", "hub", "local"}:
        raise DataError(f"unknown data source {source!r}", "use one of: auto, hub, local")
    if source in {"auto", "local"} and local_dir is not None:
        if not local_dir.is_dir():
            what = "is not a folder" if local_dir.exists() else "does not exist"
            raise DataError(f"local data folder {local_dir} {what}", LOCAL_FIX)
        return Source("local", local_dir)
    if source == "local":
        raise DataError("data.source is 'local' but no folder is given", LOCAL_FIX)
    if not hub_reachable():
        raise DataError(
            "the Hugging Face Hub is unreachable (offline, or HF_HUB_OFFLINE is set) and no local data folder is given",
            LOCAL_FIX,
        )
    return Source("hub", revisions=tuple(sorted((revisions or {}).items())))


# --------------------------------------------------------------------------------------------------------------
# Local files


def _files_under(root: Path) -> list[Path]:
    """Every file and folder under ``root`` (symlinks followed, each folder once), sorted.

    A link to a folder that contains it (``stsb/up -> ..``) is a loop: ``os.walk(followlinks=True)`` would walk
    it again and again (millions of paths from two or three such links), so it is refused, naming the link.
    Folders are listed too: a folder named like an expected file is reported as such, not skipped.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath).resolve()
        if here in seen:  # reached again through another link: its files are listed already
            dirnames[:] = []
            continue
        seen.add(here)
        for name in dirnames:
            link = Path(dirpath) / name
            if link.is_symlink() and (target := link.resolve()) in (here, *here.parents):
                raise DataError(
                    f"{link} is a symlink loop: it points to {target}, a folder that contains it",
                    "remove the link from the data folder (links to files or to other folders are fine)",
                )
        found.extend(Path(dirpath) / f for f in (*dirnames, *filenames))
    return sorted(found)


def _find(root: Path, names: list[str]) -> Path | None:
    """First path under ``root`` that ends with one of ``names`` (``"STS-B/dev.tsv"`` style), in order."""
    paths = _files_under(root)
    for name in names:
        for p in paths:
            if p.as_posix().lower().endswith("/" + name.lower()):
                return p
    return None


READ_FIX = "re-download the public file (README, section 'Data') and use it unchanged"


def _read_lines(path: Path, line_ends: bool = True) -> list[str]:
    return read_input_lines(path, fix=READ_FIX, line_ends=line_ends)


def _score(value: str, path: Path, line: int, low: float, high: float) -> float:
    try:
        score = float(value)
    except ValueError:
        raise DataError(f"{path}: line {line}: score {value!r} is not a number", "fix or remove the row") from None
    if not low <= score <= high:
        raise DataError(f"{path}: line {line}: score {score} outside {low}-{high}", "fix or remove the row")
    return score


def _sentence(value: Any, path: Path, line: int, column: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "nan":
        raise DataError(f"{path}: line {line}: empty {column}", "fix or remove the row")
    return text


def _read_sts_csv(path: Path) -> dict[str, list]:
    """STS Benchmark tarball layout: tab-separated, no header; genre, file, year, id, score, s1, s2[, extra]."""
    rows: dict[str, list] = {"sentence1": [], "sentence2": [], "score": []}
    for i, raw in enumerate(_read_lines(path), start=1):
        if not raw.strip():
            continue
        cols = raw.split("\t")
        if len(cols) < 7:
            raise DataError(
                f"{path}: line {i} has {len(cols)} tab-separated fields, expected at least 7 "
                "(genre, file, year, id, score, sentence1, sentence2)",
                "use the STS Benchmark's sts-*.csv files unchanged",
            )
        rows["score"].append(_score(cols[4], path, i, 0.0, 5.0))
        rows["sentence1"].append(_sentence(cols[5], path, i, "sentence1"))
        rows["sentence2"].append(_sentence(cols[6], path, i, "sentence2"))
    return rows


def _read_tsv_with_header(
    path: Path, required: list[str], line_ends: bool = True
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    lines = _read_lines(path, line_ends)
    if not lines:
        raise DataError(f"{path} is empty", "re-download the file")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; its header is {header}", "use the public file unchanged")
    return header, [(i, line.split("\t")) for i, line in enumerate(lines[1:], start=2) if line.strip()]


def _read_glue_sts_tsv(path: Path) -> dict[str, list]:
    header, body = _read_tsv_with_header(path, ["sentence1", "sentence2", "score"])
    s1, s2, sc = header.index("sentence1"), header.index("sentence2"), header.index("score")
    rows: dict[str, list] = {"sentence1": [], "sentence2": [], "score": []}
    for i, cols in body:
        if len(cols) < len(header):
            raise DataError(f"{path}: line {i} has {len(cols)} fields, header has {len(header)}", "fix the row")
        rows["sentence1"].append(_sentence(cols[s1], path, i, "sentence1"))
        rows["sentence2"].append(_sentence(cols[s2], path, i, "sentence2"))
        rows["score"].append(_score(cols[sc], path, i, 0.0, 5.0))
    return rows


def _read_nli_file(path: Path) -> tuple[dict[str, list], int]:
    """MultiNLI/SNLI as .csv (pairID,sentence1,sentence2,label), .jsonl or .txt/.tsv; returns rows and drops."""
    suffix = path.suffix.lower()
    records: list[tuple[int, dict[str, Any]]]
    if suffix == ".jsonl":
        records = []
        for i, line in enumerate(_read_lines(path), start=1):
            if line.strip():
                try:
                    records.append((i, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}: line {i} is not JSON ({err.msg})", "re-download the file") from None
    elif suffix == ".csv":
        records = _read_nli_csv(path)
    else:  # .txt (official MultiNLI/SNLI) and GLUE .tsv: tab-separated with a header, no quoting
        header, body = _read_tsv_with_header(path, [])
        _check_nli_columns(path, header)
        for i, cols in body:
            if len(cols) < len(header):  # a row cut short: its label would read as missing, i.e. "no gold label"
                raise DataError(f"{path}: line {i} has {len(cols)} fields, the header has {len(header)}", READ_FIX)
        records = [(i, dict(zip(header, cols, strict=False))) for i, cols in body]
    if suffix == ".jsonl" and records:
        _check_nli_columns(path, list(records[0][1]))
    rows: dict[str, list] = {"premise": [], "hypothesis": [], "label": []}
    dropped = 0
    for i, rec in records:
        raw_label = rec.get("gold_label", rec.get("label"))
        if raw_label is None:
            raise DataError(f"{path}: line {i} has no label field (gold_label or label)", READ_FIX)
        label = str(raw_label).strip().lower()
        if label in NO_GOLD_LABEL:
            dropped += 1
            continue
        if label not in NLI_LABELS:
            raise DataError(
                f"{path}: line {i}: label {raw_label!r} is not one of {sorted(NLI_LABELS)} or '-'",
                "use the public file unchanged",
            )
        rows["premise"].append(_sentence(rec.get("sentence1"), path, i, "sentence1"))
        rows["hypothesis"].append(_sentence(rec.get("sentence2"), path, i, "sentence2"))
        rows["label"].append(NLI_LABELS[label])
    return rows, dropped


def _read_nli_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """MultiNLI/SNLI .csv rows, each with exactly the header's fields (a cut row must not pass as "no label")."""
    reader = csv.reader(_read_lines(path), strict=True)  # strict: a quote left open is an error, not a merge
    records = []
    try:
        header = next(reader, [])
        _check_nli_columns(path, header)
        for cols in reader:
            if len(cols) != len(header):
                raise DataError(
                    f"{path}: line {reader.line_num} has {len(cols)} fields, the header has {len(header)}", READ_FIX
                )
            records.append((reader.line_num, dict(zip(header, cols, strict=True))))
    except csv.Error as err:  # e.g. "unexpected end of data": the file ends inside a quoted field
        raise DataError(f"{path}: line {reader.line_num}: {err} (the file looks cut short)", READ_FIX) from None
    return records


def _check_nli_columns(path: Path, header: list[str]) -> None:
    cols = set(header)
    if not {"sentence1", "sentence2"} <= cols or not ({"label", "gold_label"} & cols):
        raise DataError(
            f"{path} lacks the NLI columns sentence1, sentence2 and label (or gold_label); it has {sorted(cols)}",
            "use the public MultiNLI/SNLI files unchanged",
        )


NLI_TRAIN_FILES = [
    "multinli_1.0_train.jsonl",
    "multinli_1.0_train.txt",
    "multinli_1.0_train.csv",
    "MNLI/train.tsv",
]
NLI_DEV_FILES = [
    [
        "multinli_1.0_dev_matched.csv",
        "multinli_1.0_dev_matched.jsonl",
        "multinli_1.0_dev_matched.txt",
        "MNLI/dev_matched.tsv",
    ],
    [
        "multinli_1.0_dev_mismatched.csv",
        "multinli_1.0_dev_mismatched.jsonl",
        "multinli_1.0_dev_mismatched.txt",
        "MNLI/dev_mismatched.tsv",
    ],
    ["snli_1.0_dev.csv", "snli_1.0_dev.jsonl", "snli_1.0_dev.txt"],
    ["snli_1.0_test.csv", "snli_1.0_test.jsonl", "snli_1.0_test.txt"],
]


def _empty_nli() -> dict[str, list]:
    return {"premise": [], "hypothesis": [], "label": []}


def _local_nli_pool(root: Path, seed: int) -> tuple[dict[str, list], dict[str, Any]]:
    train = _find(root, NLI_TRAIN_FILES)
    files = [train] if train else [_find(root, names) for names in NLI_DEV_FILES]
    if not any(files):
        raise DataError(
            f"no NLI files under {root}: expected MNLI train ({NLI_TRAIN_FILES[0]}) or the dev/test sets "
            "(multinli_1.0_dev_matched.csv, multinli_1.0_dev_mismatched.csv, snli_1.0_dev.csv, snli_1.0_test.csv)",
            LOCAL_FIX,
        )
    missing = [] if train else [names[0] for names, found in zip(NLI_DEV_FILES, files, strict=True) if not found]
    if missing:
        # A smaller pool would silently change every subset (gold, silver, TSDAE rows) and every model after it.
        raise DataError(
            f"the NLI dev/test pool under {root} lacks {', '.join(missing)} (or its .jsonl/.txt form); "
            "it is built from all four MNLI/SNLI dev and test files",
            "add the missing file(s) (README, section 'Data')",
        )
    pool = _empty_nli()
    used = []
    for path in files:
        assert path is not None
        rows, dropped = _read_nli_file(path)
        for key in pool:
            pool[key].extend(rows[key])
        used.append(
            {"file": path.relative_to(root).as_posix(), "rows": len(rows["label"]), "dropped_no_gold_label": dropped}
        )
    shuffled = train is None
    if shuffled:
        # Dev/test files are grouped by source and genre; shuffle once (seeded) so any prefix mixes them.
        import numpy as np

        order = np.random.default_rng(seed).permutation(len(pool["label"]))
        pool = {k: [v[i] for i in order] for k, v in pool.items()}
    info = {
        "kind": "mnli_train" if train else "dev_test_pool",
        "files": used,
        "shuffled": shuffled,
        "shuffle_seed": seed if shuffled else None,
    }
    return pool, info


# --------------------------------------------------------------------------------------------------------------
# Public loaders


def load_nli(source: Source, n: int, seed: int = 42):
    """The first ``n`` labelled NLI pairs: the book's ``glue/mnli`` train rows, or the local pool.

    Returns ``(dataset, info)``; ``info`` records exactly which files/splits and how many rows were used.
    """
    from datasets import Dataset

    if source.kind == "hub":
        from embedlab import hub_data

        return hub_data.load_nli(source, n)
    assert source.root is not None
    pool, info = _local_nli_pool(source.root, seed)
    available = len(pool["label"])
    if n > available:
        raise DataError(
            f"asked for {n} NLI rows (prepare.nli_size) but the local pool has only {available} "
            f"({', '.join(f['file'] for f in info['files'])})",
            f"set prepare.nli_size to at most {available} (gold_size + silver_size must fit in it too)",
        )
    ds = Dataset.from_dict({k: v[:n] for k, v in pool.items()})
    return ds, {**info, "pool_rows": available, "rows": n}


def load_stsb(source: Source, split: str):
    """STS-B ``split`` (train/validation/test) with ``sentence1``, ``sentence2``, ``score`` (0-5)."""
    from datasets import Dataset

    if split not in {"train", "validation", "test"}:
        raise DataError(f"unknown STS-B split {split!r}", "use train, validation or test")
    if source.kind == "hub":
        from embedlab import hub_data

        return hub_data.load_stsb(source, split)
    assert source.root is not None
    name = {"train": "train", "validation": "dev", "test": "test"}[split]
    path = _find(source.root, [f"sts-{name}.csv", f"STS-B/{name}.tsv", f"glue-stsb/{name}.tsv"])
    if path is None:
        raise DataError(f"no STS-B {split} file under {source.root} (sts-{name}.csv or STS-B/{name}.tsv)", LOCAL_FIX)
    if path.suffix == ".tsv":
        header = _read_lines(path)[:1]
        if split == "test" and header and "score" not in header[0].split("\t"):
            raise DataError(f"{path} (GLUE STS-B test) has no scores", "add the STS Benchmark's sts-test.csv")
        rows = _read_glue_sts_tsv(path)
    else:
        rows = _read_sts_csv(path)
    if not rows["score"]:
        raise DataError(f"{path} has no rows", "re-download the file")
    return Dataset.from_dict(rows)


def load_sickr(source: Source):
    """SICK relatedness, SemEval-2014 test split (4,906 pairs), ``score`` 1-5."""
    from datasets import Dataset

    if source.kind == "hub":
        from embedlab import hub_data

        return hub_data.load_sickr(source)
    assert source.root is not None
    path = _find(source.root, ["SICK.txt", "SICK_test_annotated.txt"])
    if path is None:
        raise DataError(f"no SICK file under {source.root} (SICK.txt or SICK_test_annotated.txt)", LOCAL_FIX)
    # SICK.txt as published ends without a final newline; a row cut short still fails the field count below.
    header, body = _read_tsv_with_header(path, ["sentence_A", "sentence_B", "relatedness_score"], line_ends=False)
    a, b, s = (header.index(c) for c in ("sentence_A", "sentence_B", "relatedness_score"))
    split = header.index("SemEval_set") if "SemEval_set" in header else None
    rows: dict[str, list] = {"sentence1": [], "sentence2": [], "score": []}
    for i, cols in body:
        if len(cols) < len(header):
            raise DataError(f"{path}: line {i} has {len(cols)} fields, header has {len(header)}", "fix the row")
        if split is not None and (part := cols[split].strip().upper()) != "TEST":
            if part not in {"TRAIN", "TRIAL"}:  # e.g. "TES": a row cut short
                raise DataError(f"{path}: line {i}: SemEval_set {cols[split]!r} is not TRAIN, TRIAL or TEST", READ_FIX)
            continue
        rows["sentence1"].append(_sentence(cols[a], path, i, "sentence_A"))
        rows["sentence2"].append(_sentence(cols[b], path, i, "sentence_B"))
        rows["score"].append(_score(cols[s], path, i, 1.0, 5.0))
    return Dataset.from_dict(rows)


EVAL_LOADERS = {
    "stsb_validation": lambda src: load_stsb(src, "validation"),
    "stsb_test": lambda src: load_stsb(src, "test"),
    "sickr": load_sickr,
}


def load_eval_set(source: Source, name: str):
    """One of the evaluation sets by name (see :data:`EVAL_LOADERS`)."""
    if name not in EVAL_LOADERS:
        raise DataError(f"unknown evaluation set {name!r}", f"use one of {sorted(EVAL_LOADERS)}")
    return EVAL_LOADERS[name](source)


# --------------------------------------------------------------------------------------------------------------
# Subsets the methods use


def nli_sentences(nli, rows: int) -> list[str]:
    """TSDAE's unlabelled corpus: premise and hypothesis of the first ``rows`` pairs, de-duplicated in order."""
    seen: dict[str, None] = {}
    for row in nli.select(range(min(rows, len(nli)))):
        seen.setdefault(row["premise"], None)
        seen.setdefault(row["hypothesis"], None)
    return list(seen)
