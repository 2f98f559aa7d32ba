"""Length-grouped batches (``embedlab.batching``): a permutation per epoch, seeded, less padding, no duplicates."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from datasets import Dataset

from embedlab.batching import LengthGroupedBatchSampler


def synthetic(n: int = 1000, seed: int = 0, repeats: int = 1) -> Dataset:
    """Anchors of 1-60 words (each used ``repeats`` times, as NLI premises are) with distinct positives."""
    rng = random.Random(seed)
    anchors = [" ".join(["w"] * rng.randint(1, 60)) + f" a{i}" for i in range(-(-n // repeats))]
    rows = [anchors[i // repeats] for i in range(n)]
    return Dataset.from_dict({"anchor": rows, "positive": [f"p{i}" for i in range(n)], "label": [0] * n})


def flat(batches: list[list[int]]) -> list[int]:
    return sorted(i for b in batches for i in b)


@pytest.mark.parametrize("no_duplicates", [False, True])
def test_every_row_exactly_once_per_epoch_and_seeded(no_duplicates):
    ds = synthetic(repeats=3 if no_duplicates else 1)
    make = lambda seed: LengthGroupedBatchSampler(  # noqa: E731
        ds, 16, False, valid_label_columns=["label"], seed=seed, no_duplicates=no_duplicates, mega_batch_factor=4
    )
    sampler = make(42)
    first = list(sampler)
    assert flat(first) == list(range(len(ds))) and len(sampler) == len(first)
    assert sum(len(b) < 16 for b in first) <= (3 if no_duplicates else 1)  # only the end of the epoch is short
    assert list(make(42)) == first  # same seed, same batches
    assert list(make(7)) != first
    sampler.set_epoch(1)
    second = list(sampler)
    assert flat(second) == list(range(len(ds))) and second != first  # reshuffled each epoch


def test_no_duplicate_text_within_a_batch():
    ds = synthetic(repeats=4)
    sampler = LengthGroupedBatchSampler(ds, 32, False, valid_label_columns=["label"], seed=1, no_duplicates=True)
    batches = list(sampler)
    assert flat(batches) == list(range(len(ds)))
    for batch in batches:
        texts = [ds[i]["anchor"] for i in batch] + [ds[i]["positive"] for i in batch]
        assert len(texts) == len(set(texts))


def test_drop_last_drops_only_short_batches():
    sampler = LengthGroupedBatchSampler(synthetic(1000), 48, True, valid_label_columns=["label"], seed=3)
    batches = list(sampler)
    assert all(len(b) == 48 for b in batches) and len(batches) == 1000 // 48


def test_longest_batch_first():
    ds = synthetic(500)
    sampler = LengthGroupedBatchSampler(ds, 16, False, valid_label_columns=["label"], seed=5, longest_first=True)
    first = next(iter(sampler))
    assert max(sampler.lengths[i] for i in first) == max(sampler.lengths)


def test_each_ddp_process_gets_its_share_of_the_batches():
    """Accelerate's shard of the sampler (what the Trainer's data loader uses under DDP) covers every row once."""
    from accelerate.data_loader import BatchSamplerShard

    sampler = LengthGroupedBatchSampler(synthetic(640), 16, False, valid_label_columns=["label"], seed=0)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=r, even_batches=False)) for r in (0, 1)]
    assert shards[0] and shards[1] and not set(map(tuple, shards[0])) & set(map(tuple, shards[1]))
    assert flat(shards[0] + shards[1]) == list(range(640))


def padding(ds: Dataset, batches: list[list[int]], columns: list[str]) -> int:
    """Padding tokens (whitespace words as tokens) when each column is padded to its longest text in the batch."""
    words = {c: [len(t.split()) for t in ds[c]] for c in columns}
    return sum(max(words[c][i] for i in b) * len(b) - sum(words[c][i] for i in b) for b in batches for c in columns)


def test_less_padding_than_random_batches_on_real_nli(data_dir: Path):
    import torch
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import RandomSampler

    from embedlab import data

    pool, _ = data.load_nli(data.resolve_source("local", data_dir), 4000, seed=42)
    columns = ["premise", "hypothesis"]
    grouped = list(LengthGroupedBatchSampler(pool, 32, False, valid_label_columns=["label"], seed=42))
    generator = torch.Generator().manual_seed(42)
    plain = list(DefaultBatchSampler(RandomSampler(pool, generator=generator), batch_size=32, drop_last=False))
    assert flat(grouped) == flat(plain) == list(range(len(pool)))
    assert padding(pool, grouped, columns) < 0.5 * padding(pool, plain, columns)


def test_the_trainer_uses_it_with_no_duplicates(tmp_path, monkeypatch, data_dir):
    """``TrainSettings(group_by_length=True)`` reaches the Trainer's data loader, for a no-duplicates recipe."""
    from embedlab import data, finetune
    from embedlab.training import TrainSettings

    seen: list[list[int]] = []
    original = LengthGroupedBatchSampler.batches

    def spy(self):
        out = original(self)
        assert self.no_duplicates
        seen[:] = out
        return out

    monkeypatch.setattr(LengthGroupedBatchSampler, "batches", spy)
    pool, _ = data.load_nli(data.resolve_source("local", data_dir), 200, seed=42)
    settings = TrainSettings(
        batch_size=8, warmup=0.1, max_seq_length=32, max_steps=2, save_steps=10_000, resume=False, group_by_length=True
    )
    stats = finetune.run_finetune(
        "sentence-transformers/all-MiniLM-L6-v2",
        pool,
        "improved",
        settings,
        tmp_path / "model",
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert stats["steps"] == 2 and seen and all(len(b) <= 8 for b in seen)
    assert (tmp_path / "model" / "model.safetensors").is_file()
