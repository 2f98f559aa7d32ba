"""Augmented SBERT, step 2: candidate ("silver") pairs for the cross-encoder to label.

Four ways to pick pairs from the unlabelled pool (the silver rows' premises and hypotheses):

* ``given`` -- the book's: the pool's own (premise, hypothesis) rows, labels ignored;
* ``random`` -- the book's note: the premise of one row with the hypothesis of another, ``n`` pairs;
* ``semantic`` -- the book's note (and the AugSBERT paper's best): each sentence with its top-k neighbours
  under a pretrained embedder (``sentence_transformers.util.semantic_search``);
* ``bm25`` -- each sentence with its top-k lexical neighbours under BM25 (the ``bm25s`` library).

Every strategy goes through :func:`finalize_pairs`: no pair of a sentence with itself, no gold pair (in either
order: the bi-encoder's cosine is symmetric, so (a, b) and (b, a) are the same training example) and no
duplicates, so silver never leaks the gold labels or double-counts a pair.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

STRATEGIES = ("given", "random", "semantic", "bm25")


def pair_key(a: str, b: str) -> tuple[str, str]:
    """Order-free identity of a pair: (a, b) and (b, a) are the same similarity example."""
    return (a, b) if a <= b else (b, a)


def pair_keys(sentences1: Iterable[str], sentences2: Iterable[str]) -> set[tuple[str, str]]:
    return {pair_key(a, b) for a, b in zip(sentences1, sentences2, strict=True)}


def finalize_pairs(
    pairs: Iterable[tuple[str, str]], exclude: set[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Drop self-pairs, excluded (gold) pairs and duplicates, keeping the first occurrence and the order."""
    exclude = exclude or set()
    seen: set[tuple[str, str]] = set()
    out = []
    for a, b in pairs:
        key = pair_key(a, b)
        if a == b or key in exclude or key in seen:
            continue
        seen.add(key)
        out.append((a, b))
    return out


def pool_sentences(premises: Sequence[str], hypotheses: Sequence[str]) -> list[str]:
    """Unique sentences of the pool in first-seen order (premises repeat in SNLI: one per 3 hypotheses)."""
    return list(dict.fromkeys([*premises, *hypotheses]))


def given_pairs(premises: Sequence[str], hypotheses: Sequence[str]) -> list[tuple[str, str]]:
    """The book's silver pairs: the pool's rows as they are."""
    return list(zip(premises, hypotheses, strict=True))


def random_pairs(
    premises: Sequence[str],
    hypotheses: Sequence[str],
    n: int,
    seed: int,
    exclude: set[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Up to ``n`` pairs (premise of row i, hypothesis of row j != i), none of them a row of the pool itself.

    Draws with a seeded generator until ``n`` pairs survive :func:`finalize_pairs` or 20 n draws were made
    (a tiny pool can hold fewer than ``n`` distinct pairs).
    """
    if len(premises) < 2:
        return []
    rng = random.Random(seed)
    blocked = set(exclude or set()) | pair_keys(premises, hypotheses)
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    rows = len(premises)
    for _ in range(20 * n):
        if len(out) >= n:
            break
        i, j = rng.randrange(rows), rng.randrange(rows)
        a, b = premises[i], hypotheses[j]
        key = pair_key(a, b)
        if i == j or a == b or key in blocked or key in seen:
            continue
        seen.add(key)
        out.append((a, b))
    return out


def nearest_neighbours(embeddings, top_k: int, batch_size: int = 256) -> list[list[int]]:
    """For every row of ``embeddings``, the indices of its ``top_k`` most cosine-similar other rows, best first.

    Uses ``util.semantic_search`` (exact, chunked) with the corpus = the queries, asking for one more hit and
    dropping the row itself. Of two neighbours with exactly the same score it keeps the one with the higher index
    (its heap orders hits by (score, index)); the lists do not depend on ``batch_size`` (the query chunk).
    """
    import torch
    from sentence_transformers.util import semantic_search

    emb = torch.as_tensor(embeddings, dtype=torch.float32)
    k = min(top_k + 1, len(emb))
    hits = semantic_search(emb, emb, top_k=k, query_chunk_size=batch_size)
    return [[h["corpus_id"] for h in row if h["corpus_id"] != i][:top_k] for i, row in enumerate(hits)]


# Why not ``util.paraphrase_mining`` (issue #17): on the real silver pool (14,468 sentences, base MiniLM, top_k 2)
# it finds the same 21,316 unordered pairs, but lists them by score, each as (lower index, higher index): only 1 of
# the 21,316 pairs kept by finalize_pairs is at the same position and 5,518 are reversed, so the seeded max_pairs
# sample and the sentence1/sentence2 columns of data/silver/candidates.parquet would change. semantic_search gives
# the order this module has always written: each sentence in pool order, then its neighbours best first.
def semantic_pairs(sentences: Sequence[str], embedder, top_k: int, batch_size: int = 64) -> list[tuple[str, str]]:
    """Each sentence with its ``top_k`` nearest neighbours under ``embedder`` (normalized embeddings)."""
    emb = embedder.encode(
        list(sentences),
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=True,
        show_progress_bar=len(sentences) > 2000,
    )
    neighbours = nearest_neighbours(emb, top_k)
    return [(sentences[i], sentences[j]) for i, row in enumerate(neighbours) for j in row]


def bm25_neighbours(sentences: Sequence[str], top_k: int) -> list[list[int]]:
    """For every sentence, the indices of its ``top_k`` best BM25 matches among the others (score > 0 only)."""
    import bm25s

    tokens = bm25s.tokenize(list(sentences), stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    k = min(top_k + 1, len(sentences))
    ids, scores = retriever.retrieve(tokens, k=k, show_progress=len(sentences) > 2000, n_threads=1)
    return [
        [int(j) for j, s in zip(row_ids, row_scores, strict=True) if int(j) != i and s > 0][:top_k]
        for i, (row_ids, row_scores) in enumerate(zip(ids, scores, strict=True))
    ]


def bm25_pairs(sentences: Sequence[str], top_k: int) -> list[tuple[str, str]]:
    """Each sentence with its ``top_k`` lexical neighbours (BM25, English stop words removed)."""
    neighbours = bm25_neighbours(sentences, top_k)
    return [(sentences[i], sentences[j]) for i, row in enumerate(neighbours) for j in row]


def build_candidates(
    strategy: str,
    gold,
    pool,
    *,
    seed: int,
    top_k: int = 3,
    random_pairs_n: int | None = None,
    max_pairs: int | None = None,
    embedder=None,
    batch_size: int = 64,
) -> tuple[Any, dict[str, Any]]:
    """Candidate pairs (``sentence1``, ``sentence2``, ``strategy``) from ``pool`` that avoid every ``gold`` pair.

    ``gold`` and ``pool`` are NLI datasets (``premise``, ``hypothesis``); the pool's labels are never read.
    ``max_pairs`` keeps a seeded random subset (so strategies can be compared at the same size). Returns the
    dataset and counts for the stage's log.
    """
    from datasets import Dataset

    from embedlab.errors import ParamsError

    premises, hypotheses = list(pool["premise"]), list(pool["hypothesis"])
    gold_keys = pair_keys(gold["premise"], gold["hypothesis"])
    if strategy == "given":
        raw = given_pairs(premises, hypotheses)
    elif strategy == "random":
        raw = random_pairs(premises, hypotheses, random_pairs_n or len(pool), seed, exclude=gold_keys)
    elif strategy == "semantic":
        if embedder is None:
            raise ParamsError("the semantic strategy needs an embedder", "pass silver_pairs.embedder")
        raw = semantic_pairs(pool_sentences(premises, hypotheses), embedder, top_k, batch_size)
    elif strategy == "bm25":
        raw = bm25_pairs(pool_sentences(premises, hypotheses), top_k)
    else:
        raise ParamsError(f"unknown silver strategy {strategy!r}", f"use one of {', '.join(STRATEGIES)}")
    pairs = finalize_pairs(raw, exclude=gold_keys)
    kept = len(pairs)
    if max_pairs is not None and len(pairs) > max_pairs:
        chosen = sorted(random.Random(seed).sample(range(len(pairs)), max_pairs))
        pairs = [pairs[i] for i in chosen]
    stats = {
        "strategy": strategy,
        "raw_pairs": len(raw),
        "dropped_gold_self_or_duplicate": len(raw) - kept,
        "dropped_by_max_pairs": kept - len(pairs),
        "pairs": len(pairs),
    }
    dataset = Dataset.from_dict(
        {
            "sentence1": [a for a, _ in pairs],
            "sentence2": [b for _, b in pairs],
            "strategy": [strategy] * len(pairs),
        }
    )
    return dataset, stats
