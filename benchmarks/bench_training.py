"""Training throughput: the book's plain ``SentenceTransformerTrainer`` call vs ``embedlab.training.train``.

Two workloads at CPU-profile settings (all-MiniLM-L6-v2, batch 32, lr 5e-5, max_seq_length 128, fp16 off on a
CPU): ``finetune`` (the book recipe: MNRL over (premise, hypothesis) pairs of the NLI pool) and
``train_augsbert`` (CosineSimilarityLoss over the binary gold pairs). Each run is a fixed number of steps so
that runs compare; pairs/s = steps x batch / wall seconds of ``trainer.train()``. The quality check is STS-B
validation Spearman cosine after the same steps, measured once per path (round 1).

Also prints the token-length distribution of the training texts: the ``max_seq_length`` it suggests.

    python benchmarks/bench_training.py [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import tempfile
import time
from pathlib import Path

from common import ROOT, interleaved, median, save

BASE = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32
LR = 5e-5
MAX_SEQ = 128


def datasets(rows: int):
    """(finetune pairs, augsbert pairs), the stages' own data preparation on the prepared CPU-profile files."""
    from embedlab import augsbert, finetune
    from embedlab.io import read_parquet

    nli = read_parquet(ROOT / "data/prepared/nli.parquet", ["premise", "hypothesis", "label"])
    gold = read_parquet(ROOT / "data/prepared/gold.parquet", ["premise", "hypothesis", "label"])
    ft = finetune.all_pairs(nli.select(range(min(rows, len(nli)))))
    aug = augsbert.combine(augsbert.binary_pairs(gold.select(range(min(rows, len(gold))))))
    return ft, aug


def book_model(kind: str):
    """The book's models: the pretrained MiniLM (fine-tuning) or its transformer + mean pooling (AugSBERT)."""
    from embedlab.encoders import new_encoder
    from embedlab.models import load_sentence_transformer

    model = load_sentence_transformer(BASE, device="cpu") if kind == "finetune" else new_encoder(BASE)
    model.max_seq_length = MAX_SEQ
    return model


def book_loss(kind: str, model):
    from sentence_transformers import losses

    return losses.MultipleNegativesRankingLoss(model) if kind == "finetune" else losses.CosineSimilarityLoss(model)


def run_book(kind: str, dataset, steps: int, out: Path):
    """The book's code: model, args, dataset, loss, ``trainer.train()`` (fp16 off: no GPU here)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    model = book_model(kind)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        num_train_epochs=1,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        learning_rate=LR,
        warmup_steps=min(100, steps // 10),
        fp16=False,
        eval_steps=100,
        logging_steps=100,
        max_steps=steps,
        save_strategy="no",
        report_to="none",
        seed=42,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=book_loss(kind, model))
    start = time.perf_counter()
    trainer.train()
    return model, time.perf_counter() - start


def run_ours(kind: str, dataset, steps: int, out: Path, **levers):
    """``embedlab.training.train`` with the same settings plus the levers it offers (group_by_length...)."""
    from embedlab.training import TrainSettings, train

    model = book_model(kind)
    fields = set(inspect.signature(TrainSettings).parameters)
    levers = {k: v for k, v in levers.items() if k in fields}
    settings = TrainSettings(
        epochs=1,
        batch_size=BATCH,
        learning_rate=LR,
        warmup=min(100, steps // 10),
        fp16=False,
        max_seq_length=MAX_SEQ,
        max_steps=steps,
        resume=False,
        save_steps=10_000,
        logging_steps=100,
        **levers,
    )
    stats = train(model, dataset, book_loss(kind, model), settings, None, checkpoint_dir=out / "ckpt")
    return model, stats["train_seconds"]


def token_lengths(model, texts: list[str]) -> dict[str, int]:
    """Percentiles of tokens per text (with [CLS]/[SEP]): what max_seq_length really truncates."""
    import numpy as np

    lengths = np.array([len(ids) for ids in model.tokenizer(texts)["input_ids"]])
    return {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 99)} | {"max": int(lengths.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workloads", default="finetune,train_augsbert")
    args = ap.parse_args()

    from embedlab.evaluation import evaluate_sts
    from embedlab.io import read_parquet
    from embedlab.training import TrainSettings

    has_grouping = "group_by_length" in inspect.signature(TrainSettings).parameters
    ft, aug = datasets(args.steps * BATCH)
    data = {"finetune": ft, "train_augsbert": aug}
    sts = read_parquet(ROOT / "data/eval/stsb_validation.parquet", ["sentence1", "sentence2", "score"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    quality: dict[str, float] = {}
    tokenizer_model = book_model("finetune")
    lengths = {
        "finetune": token_lengths(tokenizer_model, list(ft["anchor"]) + list(ft["positive"])),
        "train_augsbert": token_lengths(tokenizer_model, list(aug["sentence1"]) + list(aug["sentence2"])),
    }
    print("token lengths:", lengths)

    def job(kind: str, path: str):
        def go() -> None:
            out = tmp / f"{kind}-{path}"
            shutil.rmtree(out, ignore_errors=True)
            if path == "book":
                model, _ = run_book(kind, data[kind], args.steps, out)
            else:
                model, _ = run_ours(kind, data[kind], args.steps, out, group_by_length=True)
            key = f"{kind}/{path}"
            if key not in quality:  # once per path: quality does not depend on the round (seeded)
                quality[key] = evaluate_sts(model, sts, "stsb_validation", batch_size=64)["spearman_cosine"]
                print(f"  {key}: STS-B validation spearman_cosine {quality[key]:.4f}")

        return go

    runs = {}
    for kind in args.workloads.split(","):
        runs[f"{kind}/book"] = job(kind, "book")
        runs[f"{kind}/ours"] = job(kind, "ours")
    times = interleaved(runs, args.repeats)
    rows = []
    for kind in args.workloads.split(","):
        base = median(times[f"{kind}/book"])
        for path in ("book", "ours"):
            key = f"{kind}/{path}"
            t = median(times[key])
            rows.append(
                {
                    "path": key,
                    "median_s": round(t, 2),
                    "times_s": [round(x, 2) for x in times[key]],
                    "pairs_per_s": round(args.steps * BATCH / t, 2),
                    "ratio": round(base / t, 3),
                    "spearman_cosine": round(quality[key], 4),
                    "spearman_delta": round(quality[key] - quality[f"{kind}/book"], 4),
                }
            )
            print(rows[-1])
    save(
        "training",
        rows,
        steps=args.steps,
        batch_size=BATCH,
        max_seq_length=MAX_SEQ,
        group_by_length=has_grouping,
        token_lengths=lengths,
        note="timings include each path's trainer.train() only (model loading and evaluation excluded)",
    )


if __name__ == "__main__":
    main()
