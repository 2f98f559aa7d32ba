"""Put back the outputs DVC removed before a stage that then refused to run (bad params, bad input).

``dvc repro`` deletes a stage's outputs before it starts the command, so a typo in ``params.yaml`` used to cost
the previous run's model even though the stage stopped in under a second. Every output is cached (dvc.yaml), and
``dvc.lock`` still names the previous run's objects, since a failed stage never updates it; so when a stage run by
DVC (``$DVC_STAGE`` set) exits with a user error, :func:`restore_outputs` copies those objects back from the local
cache: outputs and ``dvc.lock`` are as before, and ``dvc status`` is clean again.

Why not ``dvc checkout``: DVC holds the repository lock while the stage runs. The cache layout read here
(``.dvc/cache/files/md5/<2>/<30>``, ``.dir`` listings as JSON) is DVC 3's documented format.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def _object(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def _files(cache: Path, out: dict) -> list[tuple[str, Path]] | None:
    """(path, cache object) for every file of one dvc.lock output, or None if any object is missing."""
    md5 = out.get("md5")
    if not md5:
        return None
    if not md5.endswith(".dir"):
        obj = _object(cache, md5)
        return [(out["path"], obj)] if obj.is_file() else None
    listing = _object(cache, md5)
    if not listing.is_file():
        return None
    entries = json.loads(listing.read_text(encoding="utf-8"))
    files = [(os.path.join(out["path"], e["relpath"]), _object(cache, e["md5"])) for e in entries]
    return files if all(obj.is_file() for _, obj in files) else None


def restore_outputs(stage: str | None = None, root: Path | None = None) -> list[str]:
    """Copy back the outputs ``dvc.lock`` records for ``stage`` that are missing; returns the paths restored.

    Does nothing (returns []) outside ``dvc repro``, for a stage that never ran, or when any object is missing from
    the cache: an output is restored whole or not at all, never half.
    """
    import yaml

    stage = stage or os.environ.get("DVC_STAGE")
    root = root or Path.cwd()
    lock_path, cache = root / "dvc.lock", root / ".dvc" / "cache"
    if not stage or not lock_path.is_file():
        return []
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return []
    restored = []
    for out in lock.get("stages", {}).get(stage, {}).get("outs", []):
        target = root / out["path"]
        files = _files(cache, out)
        if target.exists() or files is None:
            continue
        tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
        for rel, obj in files:
            dest = tmp / Path(rel).relative_to(out["path"]) if out["md5"].endswith(".dir") else tmp
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(obj, dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        restored.append(out["path"])
    return restored
