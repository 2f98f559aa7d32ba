"""The book's numbers: the STS-B validation results chapter 10 printed, keyed by this repo's model names.

They are the ``spearman_cosine`` (and Pearson) its chapter-10 notebook prints (bert-base-uncased or
all-MiniLM-L6-v2, 50k MNLI train rows, a GPU). The notebook's AugSBERT and TSDAE cells have no printed output, so
for those the text's rounded figures stand in (0.71 gold+silver, 0.72 full gold, 0.70 TSDAE). The report puts them
beside each model's score: a reference for direction, not a target for a CPU profile.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BookNumber:
    """One STS-B validation result printed in the chapter."""

    spearman: float
    pearson: float | None
    what: str


# Keyed by the evaluate.models names this repo uses.
BOOK: dict[str, BookNumber] = {
    "baseline": BookNumber(0.8672, 0.8696, "untouched all-MiniLM-L6-v2"),
    "scratch-softmax": BookNumber(0.4515, 0.3711, "bert-base-uncased + SoftmaxLoss (10.4; notebook output)"),
    "scratch-cosine": BookNumber(0.7251, 0.7222, "bert-base-uncased + CosineSimilarityLoss (10.4; notebook output)"),
    "scratch-mnrl": BookNumber(0.8106, 0.8071, "bert-base-uncased + MNRL, random negatives (10.4; notebook output)"),
    "finetune-book": BookNumber(0.8485, 0.8490, "all-MiniLM-L6-v2 + MNRL, the book's recipe (10.5.1; notebook output)"),
    "augsbert": BookNumber(0.71, None, "AugSBERT 10k gold + 40k silver (10.5.2; text: 0.71)"),
    "augsbert-full-gold": BookNumber(
        0.72, None, "all 50k gold = the 10.4 CosineSimilarityLoss model (10.5.2 compares with it; text: 0.72)"
    ),
    "tsdae": BookNumber(0.70, None, "TSDAE on 25k MNLI rows, CLS pooling (10.6.1; text: 0.70)"),
}
# Names the other stages may use for the same models (matched after lower-casing and "_" -> "-").
BOOK_ALIASES = {
    "softmax": "scratch-softmax",
    "cosine": "scratch-cosine",
    "mnrl": "scratch-mnrl",
    "finetune": "finetune-book",
    "augsbert-gold-silver": "augsbert",
    "full-gold": "augsbert-full-gold",
}
# Not STS-B: the TSDAE paper's TwitterPara average precision (the chapter's domain-adaptation pointer).
OTHER_ANCHORS = [
    "TwitterPara AP (TSDAE paper, Wang et al. 2021): 72.2 zero-shot -> 74.5 with TSDAE adaptation "
    "(its own base model and data; an anchor for direction, not for the value)."
]


def book_number(model: str) -> BookNumber | None:
    key = model.lower().replace("_", "-")
    return BOOK.get(key) or BOOK.get(BOOK_ALIASES.get(key, ""))
