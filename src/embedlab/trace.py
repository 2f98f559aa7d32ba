"""What a stage really used: the params keys it read, the project code it loaded, the files it opened.

Off unless ``$EMBEDLAB_TRACE`` names a folder (the test suite sets it when it reproduces the tiny pipeline);
then :func:`embedlab.params.load_params` starts recording and :func:`embedlab.errors.run_stage` writes one JSON
per stage command into that folder. ``tests/test_declared.py`` compares each record with the stage's ``deps`` and
``params`` in ``dvc.lock``: declared = used, measured rather than read by eye.

This module is test instrumentation: a real run never imports it, so it is no stage's dependency.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ENV = "EMBEDLAB_TRACE"

_reads: set[str] = set()  # dotted params keys, e.g. "finetune.recipes.book.learning_rate"
_defaulted: set[str] = set()  # read keys whose value came from the schema's default, not from params.yaml
_opened: set[str] = set()  # files opened for reading (absolute paths)
_scripts: list[str] = []  # stage scripts run in this process (stages/launch.py, then the stage it starts)
_argv: list[str] | None = None  # the command DVC ran (the first script's argv)
_hooked = False


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def on_read(key: str, defaulted: bool) -> None:
    _reads.add(key)
    if defaulted:
        _defaulted.add(key)


def _audit(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if "r" in mode and "+" not in mode and not flags & (os.O_WRONLY | os.O_RDWR):
            path = os.path.abspath(os.fsdecode(args[0]))
            if os.path.isfile(path):  # not folders, not paths relative to another folder's descriptor
                _opened.add(path)


def start(script: str) -> None:
    """Record that ``script`` runs (called by ``run_stage``); the first call also installs the open() hook."""
    global _argv, _hooked
    if _argv is None:
        _argv = [*sys.argv]
    _scripts.append(script)
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed: only ever installed in traced stage processes
        _hooked = True


def _project_files(root: Path) -> list[str]:
    """The project's Python files this process loaded: ``embedlab`` modules and the stage scripts."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(root / "src"):
            files.add(Path(path).resolve().relative_to(root).as_posix())
    files |= {Path(s).resolve().relative_to(root).as_posix() for s in _scripts}
    return sorted(files - {"src/embedlab/trace.py"})


def _inputs(root: Path) -> set[str]:
    """Opened files that can be a stage's inputs: data and models inside the repo, anything outside it.

    Not the interpreter's and libraries' own files, not git's and DVC's (dvclive reads them), not the stage's
    params.yaml (checked key by key), checkpoints or curves (its own outputs), not temporary files.
    """
    skip_inside = (".git/", ".dvc/", "checkpoints/", "plots/", "src/", "stages/")
    keep = set()
    for path in _opened:
        p = Path(path)
        if not p.exists():  # a temporary file (atomic writes, quantization scratch), gone by the stage's end
            continue
        if p.is_relative_to(root):
            rel = p.relative_to(root).as_posix()
            if not rel.startswith(skip_inside) and "/" in rel:
                keep.add(rel)
        elif not any(part in {"site-packages", "dist-packages"} for part in p.parts) and not (
            path.startswith(("/usr/", "/etc/", "/proc/", "/sys/", "/dev/", sys.prefix, sys.base_prefix))
            or (p.is_relative_to(Path.home()) and p.relative_to(Path.home()).parts[0].startswith("."))  # ~/.gitconfig
        ):
            keep.add(path)
    return keep


def write(root: Path | None = None) -> Path | None:
    """Merge this process's record into ``$EMBEDLAB_TRACE/<hash of the command>.json``; returns the file."""
    folder = os.environ.get(ENV)
    if not folder or _argv is None:
        return None
    root = (root or Path.cwd()).resolve()
    cmd = " ".join(_argv)
    out = Path(folder) / f"{hashlib.sha1(cmd.encode()).hexdigest()[:16]}.json"
    record = {
        "cmd": cmd,
        "params": sorted(_reads),
        "defaulted": sorted(_defaulted),
        "code": _project_files(root),
        "stage": os.environ.get("DVC_STAGE"),
        "opened": sorted(_inputs(root)),
    }
    if out.is_file():  # a second process of the same command (a rerun): keep the union
        old = json.loads(out.read_text(encoding="utf-8"))
        record = {k: sorted(set(v) | set(old.get(k, []))) if isinstance(v, list) else v for k, v in record.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(out)
    return out
