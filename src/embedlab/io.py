"""Atomic writes: an interrupted stage never leaves an output that looks complete.

Everything is written to a sibling temporary path first and moved into place with ``os.replace`` (atomic on
POSIX within one file system). A directory output that already exists is swapped out, then removed.
In a distributed launch (``torchrun``/``accelerate``) only rank 0 publishes: other ranks' writes are discarded,
so every output is written exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedlab.errors import DataError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success move it onto ``target``, on failure delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if os.environ.get("RANK", "0") != "0":
            raise _NotRankZero
        if is_dir:
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException as err:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if not isinstance(err, _NotRankZero):
            raise


class _NotRankZero(Exception):
    """Internal: a non-zero rank finished writing; its copy is dropped."""


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as stable, human-readable JSON (sorted keys), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_parquet(path: str | os.PathLike[str], dataset: Any) -> None:
    """Write a ``datasets.Dataset`` or ``pandas.DataFrame`` to parquet atomically, with stable bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if getattr(dataset, "_indices", None) is not None:  # a select()/shuffle() view: materialise the chosen rows
        dataset = dataset.flatten_indices()
    table = dataset.data.table if hasattr(dataset, "data") and hasattr(dataset.data, "table") else None
    if table is None:
        table = pa.Table.from_pandas(dataset, preserve_index=False)
    # Drop pandas/HF schema metadata: it can embed versions, which would change bytes across machines.
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path: str | os.PathLike[str], required: list[str] | None = None):
    """Read a parquet file into a ``datasets.Dataset``, with clear errors for missing/corrupt/wrong files."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist", "run the stage that produces it first (e.g. `dvc repro`)")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for truncated or foreign files
        raise DataError(
            f"{path} is not a readable parquet file ({type(err).__name__}: {err})",
            "delete it and re-run the stage that produces it (`dvc repro --force <stage>`)",
        ) from None
    missing = [c for c in (required or []) if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {missing}; it has {table.column_names}",
            "re-run the stage that produces it with the current code",
        )
    if table.num_rows == 0:
        raise DataError(f"{path} has no rows", "check the sizes in params.yaml and re-run the producing stage")
    return Dataset(table)
