"""The builders of a new sentence encoder: a base checkpoint's transformer + a new pooling layer, or a static
embedding table drawn at random over a base checkpoint's tokenizer.

Every method that starts from a plain encoder rather than a finished sentence embedder uses :func:`new_encoder`:
10.4 (mean pooling, the book's ``SentenceTransformer("bert-base-uncased")``), AugSBERT's bi-encoder (mean), TSDAE,
SimCSE and CT (the ``pooling`` param, CLS in the book's TSDAE), and the control arm of domain adaptation.
:func:`new_static_encoder` is 10.4 on a CPU: the only pretrained checkpoint offline is MiniLM, already a sentence
embedder, so "from scratch" there means no pretrained weight at all (sentence-transformers' ``StaticEmbedding``:
token vectors averaged, trained in seconds per thousand pairs).
"""

from __future__ import annotations

from typing import Literal

Pooling = Literal["cls", "mean"]


def new_encoder(base_model: str, pooling: Pooling = "mean", max_seq_length: int | None = None, seed: int = 42):
    """``base_model``'s transformer + a new ``pooling`` layer; only the transformer's weights come from the base.

    Seeded with ``seed`` first: any weight the base lacks (e.g. a pooler) is initialised the same every run.
    ``config._name_or_path`` is set to the folder really loaded, so a loss that rebuilds a decoder from it
    (TSDAE) reads the same local files, offline too.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as PoolingModule
    from sentence_transformers.sentence_transformer.modules import Transformer

    from embedlab.models import loading, resolve_model
    from embedlab.training import seed_everything

    path = resolve_model(base_model)
    kwargs = {"max_seq_length": max_seq_length} if max_seq_length else {}
    seed_everything(seed)
    with loading(path):
        transformer = Transformer(path, **kwargs)
    model = SentenceTransformer(modules=[transformer, PoolingModule(transformer.get_embedding_dimension(), pooling)])
    model.transformers_model.config._name_or_path = path
    return model


def new_static_encoder(tokenizer_model: str, embedding_dim: int, seed: int = 42):
    """A ``StaticEmbedding`` of width ``embedding_dim`` over ``tokenizer_model``'s tokenizer, weights drawn at random.

    Only the tokenizer (its vocabulary and splitting rules) comes from ``tokenizer_model``; the table is PyTorch's
    ``nn.EmbeddingBag`` initialisation, drawn right after seeding ``seed``, so the same seed gives the same table.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from transformers import AutoTokenizer

    from embedlab.models import loading, resolve_model
    from embedlab.training import seed_everything

    path = resolve_model(tokenizer_model)
    with loading(path):
        tokenizer = AutoTokenizer.from_pretrained(path)
    seed_everything(seed)
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=embedding_dim)])
