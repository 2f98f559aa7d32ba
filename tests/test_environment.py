"""The pinned environment: the lock files and what ``embedlab.environment`` reports about the installed one."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from embedlab.environment import LIBRARIES, library_versions, locked_versions, normalize, torch_build

ROOT = Path(__file__).resolve().parents[1]
CPU_LOCK = ROOT / "requirements" / "cpu.txt"
CUDA_LOCK = ROOT / "requirements" / "cuda.txt"
PINNED_TORCH = "2.13.0+cpu"  # requirements/cpu.txt; what CI and `make install VARIANT=cpu` install


def test_library_versions_are_the_installed_ones():
    versions = library_versions()
    assert set(versions) == {"python", *LIBRARIES, "torch_build"}
    assert versions["python"] == platform.python_version()
    for dist in LIBRARIES:
        assert versions[dist] == metadata.version(dist), dist
    assert versions["torch_build"] == torch_build(metadata.version("torch"))


def test_torch_is_the_locked_cpu_build():
    installed = metadata.version("torch")
    if installed != PINNED_TORCH:
        pytest.skip(f"torch {installed} installed, not the CPU lock's {PINNED_TORCH}")
    versions = library_versions()
    assert versions["torch"] == PINNED_TORCH
    assert versions["torch_build"] == "cpu"


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("2.13.0+cpu", "cpu"),
        ("2.13.0+cu130", "cuda"),
        ("2.6.0+cu124", "cuda"),
        ("2.13.0+rocm6.4", "rocm"),
        ("2.13.0+xpu", "unknown"),
        ("not installed", "not installed"),
    ],
)
def test_torch_build_from_the_version_string(version, build):
    assert torch_build(version) == build


def test_library_versions_imports_nothing_heavy():
    """Read from package metadata, so every stage can record versions without importing torch (no clock asserted:
    a loaded machine makes any time limit flaky; not importing the libraries is what keeps it cheap)."""
    code = (
        "import sys; from embedlab.environment import library_versions; v = library_versions(); "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'datasets', 'dvc') "
        "if m in sys.modules]; "
        "print(v['torch'], heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "src", capture_output=True, text=True, check=True)
    version, heavy = out.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    import torch

    assert version == torch.__version__


def _pins_with_hashes(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [sha256, ...])} of a `uv pip compile --generate-hashes` file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in lock.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            name = normalize(m.group(1))
            pins[name] = (m.group(2), [])
        if name and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[name][1].append(h.group(1))
    return pins


@pytest.mark.parametrize(("lock", "torch"), [(CPU_LOCK, "2.13.0+cpu"), (CUDA_LOCK, "2.13.0")])
def test_locks_pin_every_package_with_hashes(lock, torch):
    pins = _pins_with_hashes(lock)
    assert pins["torch"][0] == torch
    for dist in ("sentence-transformers", "transformers", "datasets", "dvc", "uv"):
        assert dist in pins, f"{lock.name} does not pin {dist}"
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"{lock.name}: pins without hashes: {unhashed}"
    assert all(line.startswith(("#", " ", "-")) or "==" in line for line in lock.read_text().splitlines() if line)
    assert "embedlab" not in pins  # the project installs on top, without dependencies


def test_the_local_cpu_wheel_matches_the_lock():
    wheels = sorted(Path("/opt/wheels").glob(f"torch-{PINNED_TORCH}-*.whl"))
    if not wheels:
        pytest.skip("no local torch +cpu wheel in /opt/wheels")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    assert digest in _pins_with_hashes(CPU_LOCK)["torch"][1]


def test_cuda_lock_differs_from_the_cpu_lock_only_by_the_torch_build():
    cpu, cuda = locked_versions(CPU_LOCK), locked_versions(CUDA_LOCK)
    shared = set(cpu) & set(cuda)
    assert {name: cpu[name] for name in shared if name != "torch"} == {n: cuda[n] for n in shared if n != "torch"}
    assert set(cpu) - set(cuda) == set()
    extra = set(cuda) - set(cpu)
    assert extra and all(n.startswith(("nvidia-", "cuda-", "triton")) for n in extra), extra


def test_the_installed_environment_is_the_lock():
    """After `make install`, the venv holds exactly the lock's versions (uv pip sync), plus embedlab and pip."""
    torch = metadata.version("torch")
    lock = CPU_LOCK if torch_build(torch) == "cpu" else CUDA_LOCK
    pins = locked_versions(lock)
    if pins.get("torch") != torch:
        pytest.skip(f"torch {torch} is not the version {lock.name} pins: not installed from a lock")
    installed = {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {n: (installed.get(n), v) for n, v in pins.items() if installed.get(n) != v}
    assert not wrong, f"installed != {lock.name} (installed, locked): {wrong}; run `make install`"
    extra = set(installed) - set(pins) - {"embedlab", "pip"}
    assert not extra, f"installed but not in {lock.name}: {sorted(extra)}; run `make install` (uv pip sync)"
