"""Length-grouped training batches: less padding per batch, in-batch negatives still drawn from everywhere.

Every text column of a batch is padded to its longest text, so a random batch of short and long sentences spends
most of its compute on padding (on a CPU, where nothing hides it, that is most of a step). Sorting the whole
dataset by length would remove the padding but make every batch a set of look-alikes of one length, which are
poor in-batch negatives and a biased order. :class:`LengthGroupedBatchSampler` does what Hugging Face's
``LengthGroupedSampler`` does instead:

1. shuffle all rows with a seeded generator (``seed + epoch``: deterministic, different each epoch);
2. cut the order into mega-batches of ``mega_batch_factor x batch_size`` rows;
3. sort each mega-batch by length (longest first) and split it into batches;
4. shuffle the order of the batches, so lengths do not rise and fall in waves through the epoch.

Length is a cheap proxy: the characters of a row's longest text column. With ``no_duplicates`` (the recipes
that use ST's ``NoDuplicatesBatchSampler``) a batch never holds the same text twice, in any column, because a
duplicate would be a false negative: a row that does not fit a batch waits for the next one, and rows left at
the end of a mega-batch move on to the next.

The sampler yields whole batches for the whole dataset; under DDP the Accelerate data loader the Trainer builds
hands each process its share of the batches, exactly as it does with ST's own samplers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sentence_transformers.base.sampler import DefaultBatchSampler

# Columns the ST data collator adds or reads that are not texts.
_NOT_TEXT = {"return_loss", "dataset_name"}


def text_lengths(dataset: Any, valid_label_columns: list[str] | None = None) -> list[int]:
    """Per row, the character length of its longest text column (labels and scores excluded)."""
    columns = text_columns(dataset, valid_label_columns)
    lengths = [0] * len(dataset)
    for column in columns:
        for i, value in enumerate(dataset[column]):
            lengths[i] = max(lengths[i], len(str(value)))
    return lengths


def text_columns(dataset: Any, valid_label_columns: list[str] | None = None) -> list[str]:
    skip = _NOT_TEXT | set(valid_label_columns or [])
    return [c for c in dataset.column_names if c not in skip]


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """Batches of similar length from seeded mega-batches; optionally no repeated text within a batch.

    Takes the arguments the Trainer passes to every batch sampler (``batch_sampler=functools.partial(
    LengthGroupedBatchSampler, no_duplicates=...)``); ``set_epoch`` (from ST's mixin) reshuffles per epoch.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        *,
        no_duplicates: bool = False,
        mega_batch_factor: int = 50,
        longest_first: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        self.no_duplicates = no_duplicates
        self.mega_batch_factor = mega_batch_factor
        self.longest_first = longest_first
        self.lengths = text_lengths(dataset, valid_label_columns)
        self.texts: list[set[str]] = []
        if no_duplicates:
            columns = [dataset[c] for c in text_columns(dataset, valid_label_columns)]
            self.texts = [{str(col[i]) for col in columns} for i in range(len(dataset))]
        self._cached: tuple[int, list[list[int]]] | None = None

    def _split(self, pool: list[int], partial: bool) -> tuple[list[list[int]], list[int]]:
        """Cut length-sorted ``pool`` into full batches; return them and the rows left over.

        ``partial``: also emit the incomplete batches (the end of the epoch) instead of leaving them over.
        """
        size = self.batch_size
        if not self.no_duplicates:
            cut = len(pool) if partial else len(pool) - len(pool) % size
            return [pool[i : i + size] for i in range(0, cut, size)], pool[cut:]
        batches: list[list[int]] = []
        remaining = pool
        while remaining:
            batch: list[int] = []
            seen: set[str] = set()
            skipped: list[int] = []
            for position, index in enumerate(remaining):
                if len(batch) == size:
                    skipped.extend(remaining[position:])
                    break
                if self.texts[index].isdisjoint(seen):
                    batch.append(index)
                    seen |= self.texts[index]
                else:
                    skipped.append(index)
            if len(batch) < size and not partial:
                return batches, remaining  # not enough distinct rows here: they join the next mega-batch
            batches.append(batch)
            remaining = skipped
        return batches, []

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in order (computed once per epoch: ``__len__`` and ``__iter__`` share them)."""
        if self._cached is not None and self._cached[0] == self.epoch:
            return self._cached[1]
        import torch

        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega = self.batch_size * self.mega_batch_factor
        batches: list[list[int]] = []
        carry: list[int] = []
        for start in range(0, len(order), mega):
            pool = sorted(carry + order[start : start + mega], key=lambda i: -self.lengths[i])  # stable: ties stay
            full, carry = self._split(pool, partial=False)
            batches += full
        last, _ = self._split(carry, partial=True)
        batches += [b for b in last if len(b) == self.batch_size or not self.drop_last]
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        if self.longest_first and shuffled:
            longest = max(range(len(shuffled)), key=lambda b: max(self.lengths[i] for i in shuffled[b]))
            shuffled.insert(0, shuffled.pop(longest))
        self._cached = (self.epoch, shuffled)
        return shuffled

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())
