"""Atomic writes: an interrupted stage never leaves an output that looks complete.

Everything is written to a sibling temporary path first and moved into place with ``os.replace`` (atomic on
POSIX within one file system). A directory output that already exists is swapped out, then removed.
In a distributed launch (``torchrun``/``accelerate``) only rank 0 publishes: other ranks' writes are discarded,
so every output is written exactly once. Outputs get the modes a plain ``open`` would give them (the user's umask),
not the private 0600/0700 of ``tempfile``: a teammate sharing the checkout can read them.

:func:`read_input_lines` is how raw inputs are read: a FIFO, a directory, a symlink loop or a file cut mid-line
fails at once with one line naming the path, instead of blocking forever or silently yielding fewer rows.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
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
        tmp.chmod(0o777 & ~umask())
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.chmod(0o666 & ~umask())  # writers that reopen the path (pyarrow, safetensors) keep this mode
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


def umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only set it; Linux shows it in /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


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


def check_regular_file(path: Path, fix: str) -> None:
    """Fail with one line unless ``path`` is a regular file (after symlinks): never open a FIFO, folder or loop."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        what = "is a broken symlink" if path.is_symlink() else "does not exist"
        raise DataError(f"{path} {what}", fix) from None
    except OSError as err:  # ELOOP: a symlink to itself or a cycle of links; EACCES; ...
        cause = "is a symlink loop" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
        raise DataError(f"{path} {cause}", fix) from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path} is a directory, not a file", fix)
    if not stat.S_ISREG(mode):  # reading a FIFO blocks until someone writes to it; a device never ends
        raise DataError(f"{path} is not a regular file (a FIFO, socket or device): reading it could hang", fix)


def read_input_lines(path: Path, *, fix: str, line_ends: bool = True) -> list[str]:
    """The lines of a raw UTF-8 input file, after :func:`check_regular_file`.

    ``line_ends``: the public file ends every line with a newline, so text after the last one means the file was
    cut short (a download or copy that stopped), which would otherwise lose rows or keep half a sentence.
    """
    check_regular_file(path, fix)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8 ({err.reason})", fix) from None
    lines = text.splitlines()
    if line_ends and text and not text.endswith(("\n", "\r")):
        raise DataError(f"{path}: line {len(lines)} has no line end: the file looks cut short", fix)
    return lines


def read_parquet(path: str | os.PathLike[str], required: list[str] | None = None):
    """Read a parquet file into a ``datasets.Dataset``, with clear errors for missing/corrupt/wrong files."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    path = Path(path)
    check_regular_file(path, "run the stage that produces it first (e.g. `dvc repro`)")
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
