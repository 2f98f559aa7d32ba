"""The ``hub`` data source: the book's ``load_dataset`` calls, at the commits ``data.revisions`` pins.

Kept apart from :mod:`embedlab.data`, which reads the local files and picks the source: the local path never
imports this module (nor ``datasets.load_dataset``'s network code). Each loader returns the columns the local
reader of the same name returns.
"""

from __future__ import annotations

from embedlab.data import LOCAL_FIX, Source
from embedlab.errors import DataError

PAIR_COLUMNS = ["sentence1", "sentence2", "score"]


def hub_load(source: Source, path: str, name: str | None, split: str):
    """``datasets.load_dataset`` at the commit ``data.revisions`` pins, with one clear error instead of a stack trace.

    ``glue`` is ``nyu-mll/glue`` on the Hub today; the canonical name keeps the pin unambiguous.
    """
    revision = dict(source.revisions).get(path)
    if not revision:
        raise DataError(f"no pinned revision for the Hub dataset {path}", f"add data.revisions.{path}: <commit sha>")
    from datasets import load_dataset

    try:
        return load_dataset(path, name, split=split, revision=revision)
    except Exception as err:  # ConnectionError, DatasetNotFoundError, HfHubHTTPError, ...
        what = f"{path}/{name}" if name else path
        raise DataError(
            f"could not load {what} ({split}) at {revision} from the Hugging Face Hub: {err}", LOCAL_FIX
        ) from None


def load_nli(source: Source, n: int):
    """The book's subset: the first ``n`` rows of ``glue/mnli`` train; returns ``(dataset, info)``."""
    ds = hub_load(source, "nyu-mll/glue", "mnli", "train")
    if n > len(ds):
        raise DataError(f"asked for {n} NLI rows but glue/mnli train has {len(ds)}", "lower prepare.nli_size")
    ds = ds.select(range(n)).remove_columns("idx")
    return ds, {"kind": "hub", "dataset": "glue/mnli", "split": "train", "rows": n}


def load_stsb(source: Source, split: str):
    """STS-B ``split``: GLUE's train/validation (the book's ``load_dataset("glue", "stsb")``), the Benchmark's test."""
    if split == "test":  # GLUE's test split has no scores; the STS Benchmark's own test set does.
        return hub_load(source, "mteb/stsbenchmark-sts", None, "test").select_columns(PAIR_COLUMNS)
    ds = hub_load(source, "nyu-mll/glue", "stsb", split)
    return ds.rename_column("label", "score").select_columns(PAIR_COLUMNS)


def load_sickr(source: Source):
    """SICK relatedness, test split, with the local reader's column names."""
    ds = hub_load(source, "RobZamp/sick", None, "test")
    ds = ds.rename_columns({"sentence_A": "sentence1", "sentence_B": "sentence2", "relatedness_score": "score"})
    return ds.select_columns(PAIR_COLUMNS)
