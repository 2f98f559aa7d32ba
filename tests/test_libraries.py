"""Hand-written code next to the library that could replace it (issue #17): same numbers, or the reason it stays.

* in-domain AP (``domain.average_precision``) against sentence-transformers' ``BinaryClassificationEvaluator``;
* semantic neighbours (``silver.nearest_neighbours``, which is ``util.semantic_search``) against
  ``util.paraphrase_mining``;
* the word splitter (``text.split_words``) against ``nltk.tokenize.TweetTokenizer``.

Each "why not" is written next to the code; these tests keep what it states true.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import domain, silver


class LetterModel:
    """A deterministic encoder (letter counts): the same vector for a text whatever its batch, unlike a transformer."""

    similarity_fn_name = "cosine"

    def encode(self, texts, convert_to_tensor=False, normalize_embeddings=False, **kwargs):
        import torch

        v = torch.tensor([[t.lower().count(c) + 0.1 for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts])
        if normalize_embeddings:
            v = torch.nn.functional.normalize(v, dim=1)
        return v if convert_to_tensor else v.numpy()


def evaluator_ap(model, ds) -> float:
    from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator

    evaluator = BinaryClassificationEvaluator(
        list(ds["sentence1"]), list(ds["sentence2"]), list(ds["label"]), similarity_fn_names=["cosine"], write_csv=False
    )
    return float(evaluator.compute_metrics(model)["cosine"]["ap"])


def test_average_precision_is_the_evaluators_metric():
    """Same formula: with an encoder that ignores batching, the evaluator's cosine AP equals ours to the bit."""
    from datasets import Dataset

    words = ["the game", "great game", "mondays", "the show", "new song", "game night", "song", "show tonight"]
    s1 = [words[i % 8] for i in range(40)]
    s2 = [words[(3 * i + 1) % 8] + " " + words[i % 5] for i in range(40)]
    ds = Dataset.from_dict({"sentence1": s1, "sentence2": s2, "label": [int(i % 3 == 0) for i in range(40)]})
    assert domain.average_precision(LetterModel(), ds) == evaluator_ap(LetterModel(), ds)


@pytest.mark.realdata
def test_average_precision_on_real_pit2015_with_minilm(data_dir):
    """Real pairs, the real model: ours = sklearn on each column encoded alone = the evaluator, within 1e-6."""
    from sklearn.metrics import average_precision_score

    from embedlab.models import load_sentence_transformer

    model = load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    ds = domain.load_pit2015_test(domain.twitter_root(data_dir)).select(range(300))
    ours = domain.average_precision(model, ds)
    a, b = (model.encode(ds[c], normalize_embeddings=True) for c in ("sentence1", "sentence2"))
    assert ours == pytest.approx(average_precision_score(ds["label"], (a * b).sum(axis=1)), abs=1e-6)
    assert ours == pytest.approx(evaluator_ap(model, ds), abs=1e-6)


def test_nearest_neighbours_are_semantic_search_and_paraphrase_mining_pairs():
    """Exact ties keep the higher index, whatever the query chunk; paraphrase_mining: same pairs, another order."""
    import torch
    from sentence_transformers.util import paraphrase_mining_embeddings

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(60, 6)).astype(np.float32)
    emb[7] = emb[3]  # an exact tie for every query, as two sentences differing only in case get under MiniLM
    emb[20] = emb[3] + 0.01  # ... and a query whose nearest neighbour is that tie
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    nn = silver.nearest_neighbours(emb, top_k=2)
    assert all(silver.nearest_neighbours(emb, top_k=2, batch_size=bs) == nn for bs in (1, 7, 60))
    assert nn[3][0] == 7 and nn[7][0] == 3
    assert silver.nearest_neighbours(emb, top_k=1)[20] == [7]  # of the tied pair, the higher index
    mined = paraphrase_mining_embeddings(torch.tensor(emb), top_k=2, max_pairs=10**6)
    ours = [(i, j) for i, row in enumerate(nn) for j in row]
    assert {tuple(sorted(p)) for p in ours} == {(i, j) for _, i, j in mined}
    assert list(dict.fromkeys(tuple(sorted(p)) for p in ours)) != [(i, j) for _, i, j in mined]  # by score


def test_tweet_tokenizer_splits_otherwise():
    """TweetTokenizer keeps hyphenated words and 3rd whole and splits runs of punctuation: not a drop-in."""
    from nltk.tokenize import TweetTokenizer

    from embedlab.text import split_words

    tweet = TweetTokenizer(preserve_case=True, reduce_len=False, strip_handles=False, match_phone_numbers=False)
    text = "A t-shirt at the 3rd game (the show)."
    assert split_words(text) == ["A", "t", "-", "shirt", "at", "the", "3", "rd", "game", "(", "the", "show", ")."]
    assert tweet.tokenize(text) == ["A", "t-shirt", "at", "the", "3rd", "game", "(", "the", "show", ")", "."]
    same = "@fan loves #music at https://t.co/x 2,000 times, doesn't it?"
    assert split_words(same) == tweet.tokenize(same)
