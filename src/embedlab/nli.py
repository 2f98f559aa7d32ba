"""The NLI pool as the training methods read it: GLUE's label ids, the columns, and the shapes two methods share.

Kept apart from :mod:`embedlab.data` (which reads raw files and the Hub) so a training stage depends on the few
lines it uses, not on the loaders: editing a loader reruns ``prepare`` only.
"""

from __future__ import annotations

import random
from typing import Any

from embedlab.errors import DataError

NLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}
ENTAILMENT = NLI_LABELS["entailment"]
CONTRADICTION = NLI_LABELS["contradiction"]
NLI_COLUMNS = ["premise", "hypothesis", "label"]


def check_columns(dataset, required: list[str], what: str) -> None:
    """Fail with a clear message when a dataset lacks a column a method reads."""
    missing = [c for c in required if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"{what} lacks column(s) {missing}; it has {dataset.column_names}",
            "re-run `dvc repro prepare` with the current code",
        )
    if len(dataset) == 0:
        raise DataError(f"{what} has no rows", "check the sizes in params.yaml")


def first_rows(nli, max_rows: int | None):
    """The first ``max_rows`` rows of the pool (all when None): small profiles train on a prefix."""
    return nli if max_rows is None or max_rows >= len(nli) else nli.select(range(max_rows))


def mnrl_triplets(nli, seed: int = 42, limit: int | None = None) -> tuple[Any, dict[str, int]]:
    """(anchor, positive, negative) from the entailment pairs; negative = a contradiction of the same premise.

    A premise with several entailments cycles through its contradictions; one without any gets a seeded random
    hypothesis of another premise (soft negative). Premises are taken in pool order, with all their hypotheses,
    until ``limit`` triplets (all when None): a prefix of the pool would split premise groups and lose most hard
    negatives (the first 10,000 of the 39,313 offline rows: 24 % hard; the first 6,000 triplets: nearly all).
    Returns the dataset and counts of hard/soft negatives.
    """
    from datasets import Dataset

    check_columns(nli, NLI_COLUMNS, "NLI pool")
    groups: dict[str, dict[int, list[str]]] = {}
    for premise, hypothesis, label in zip(nli["premise"], nli["hypothesis"], nli["label"], strict=True):
        groups.setdefault(premise, {}).setdefault(label, []).append(hypothesis)
    hypotheses = list(nli["hypothesis"])
    rng = random.Random(seed)
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    seen: set[tuple[str, str, str]] = set()
    hard = soft = 0
    for premise, by_label in groups.items():
        if limit is not None and hard + soft >= limit:
            break
        contradictions = by_label.get(CONTRADICTION, [])
        own = {h for hs in by_label.values() for h in hs}
        for i, positive in enumerate(by_label.get(ENTAILMENT, [])):
            if contradictions:
                negative = contradictions[i % len(contradictions)]
            else:
                negative = rng.choice(hypotheses)
                while negative in own and len(own) < len(hypotheses):
                    negative = rng.choice(hypotheses)
            key = (premise, positive, negative)
            if key in seen or positive == premise or (limit is not None and hard + soft >= limit):
                continue
            seen.add(key)
            rows["anchor"].append(premise)
            rows["positive"].append(positive)
            rows["negative"].append(negative)
            hard += bool(contradictions)
            soft += not contradictions
    return Dataset.from_dict(rows), {"triplets": hard + soft, "hard_negatives": hard, "soft_negatives": soft}
