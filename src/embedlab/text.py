"""Words of a sentence without a model or downloaded data, and the distinct sentences the unsupervised methods train on.

Why a regex and not ``nltk.tokenize.TweetTokenizer``: see :data:`_WORD_RE`.
"""

from __future__ import annotations

import re

# URLs, @mentions, #hashtags, numbers with decimals, words with inner apostrophes, runs of punctuation.
# Not nltk's TweetTokenizer (issue #17): on data/prepared/tsdae.parquet it splits 805 of 9,377 sentences otherwise
# (t-shirt and 3rd kept whole, ")." split into ")" "."), 47 of 2,000 of data/domain/corpus.parquet; TSDAE deletes
# words, so another split changes the noise and every TSDAE-trained model.
_WORD_RE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+|\d+(?:[.,]\d+)*|\w+(?:['\u2019]\w+)*|[^\w\s]+")


def split_words(text: str) -> list[str]:
    """Words and punctuation runs of ``text``; no model or downloaded data needed."""
    return _WORD_RE.findall(text)


def join_words(words: list[str]) -> str:
    """Inverse of :func:`split_words` up to spacing (nltk's Treebank detokenizer is plain code, no data)."""
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    return TreebankWordDetokenizer().detokenize(words)


def clean_sentences(sentences: list[str]) -> list[str]:
    """Strip, drop blanks and duplicates, keep order (TSDAE and the contrastive methods need distinct texts)."""
    seen: dict[str, None] = {}
    for s in sentences:
        s = " ".join(str(s).split())
        if s and split_words(s):
            seen.setdefault(s, None)
    return list(seen)


def training_sentences(sentences: list[str], method: str) -> list[str]:
    """:func:`clean_sentences`, refusing an empty result: ``method`` would train on nothing."""
    from embedlab.errors import DataError

    cleaned = clean_sentences(sentences)
    if not cleaned:
        raise DataError(f"no non-empty sentences to train {method} on", "check the prepared corpus")
    return cleaned
