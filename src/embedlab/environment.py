"""Which versions of the libraries that decide a result are installed, read in milliseconds.

A metric is only reproducible together with the environment that produced it: the same params and data give
different numbers under another torch, transformers or sentence-transformers (other kernels, defaults, tokenizer
fixes), and a CPU build of torch differs from a CUDA one. The environment itself is pinned by the lock files
(``requirements/cpu.txt``, ``requirements/cuda.txt``; ``make install``); this module reports what is actually
installed, so that it can be written next to metrics and compared with the lock.

Everything comes from the installed packages' metadata (``importlib.metadata``): nothing here imports torch or
any other heavy library, so a stage can record versions before (or without) paying seconds of imports.
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import re
from pathlib import Path

#: the distributions reported by :func:`library_versions`, besides ``python`` and ``torch_build``
LIBRARIES = ("torch", "transformers", "sentence-transformers", "datasets", "dvc", "embedlab")
NOT_INSTALLED = "not installed"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def torch_build(version: str) -> str:
    """``cpu``, ``cuda``, ``rocm`` or ``unknown`` for a torch version string.

    The local label says it for PyTorch's own wheels (``2.13.0+cpu``, ``2.13.0+cu130``, ``2.13.0+rocm6.4``). A
    plain version (``2.13.0``, the PyPI wheel) is a CUDA build on Linux exactly when its NVIDIA runtime libraries
    are installed with it (they are torch's dependencies there), and a CPU build otherwise (macOS, Windows).
    """
    if version == NOT_INSTALLED:
        return NOT_INSTALLED
    _, _, label = version.partition("+")
    if label == "cpu":
        return "cpu"
    if label.startswith("cu"):
        return "cuda"
    if label.startswith("rocm"):
        return "rocm"
    if label:
        return "unknown"
    cuda_libraries = ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu13")
    return "cuda" if any(_version(d) != NOT_INSTALLED for d in cuda_libraries) else "cpu"


def library_versions() -> dict[str, str]:
    """Installed versions: ``python``, torch, transformers, sentence-transformers, datasets, dvc, embedlab, and
    ``torch_build`` (``cpu`` / ``cuda`` / ...). A missing library reads ``"not installed"``."""
    versions = {"python": platform.python_version()}
    versions.update({dist: _version(dist) for dist in LIBRARIES})
    versions["torch_build"] = torch_build(versions["torch"])
    return versions


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Flufl.Lock`` -> ``flufl-lock``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: str | Path) -> dict[str, str]:
    """``{normalized name: version}`` of every ``name==version`` pin in a requirements lock file."""
    pins = {}
    for line in Path(lock).read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            pins[normalize(m.group(1))] = m.group(2)
    return pins
