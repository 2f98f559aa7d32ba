"""What every unsupervised stage (10.6) does around its method: train, check against trivial baselines, save.

TSDAE (:mod:`embedlab.tsdae`), SimCSE (:mod:`embedlab.simcse`) and Contrastive Tension (:mod:`embedlab.ct`) train
the same encoder (the base's transformer + a new pooling) on unlabelled sentences. Whatever the method, a model
is only saved when its STS-B validation score beats averaging the base's input word embeddings
(:func:`embedlab.baselines.static_floor`; for TSDAE also when the held-out reconstruction loss dropped): a stage
refuses to hand a collapsed model to the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedlab.cards import CardInfo

Runner = Callable[..., tuple[Any, dict[str, Any]]]  # run_tsdae, run_simcse, run_ct: (model, stats), unsaved


def train_unsupervised(
    run: Runner,
    base_model: str,
    sentences: list[str],
    settings,
    curve: tuple[str, Any],
    *,
    name: str,
    live_dir: str | Path,
    metrics_path: str | Path,
    pooling: str = "cls",
    eval_batch_size: int = 64,
    check: Callable[[dict[str, Any]], None] | None = None,
    card: CardInfo | None = None,
    **method_kwargs: Any,
) -> dict[str, Any] | None:
    """``run`` into ``models/<name>``; statistics to ``metrics_path``; None on non-zero DDP ranks.

    Raises (nothing saved, statistics still written to explain why) when the model fails ``check(stats)`` (the
    method's own, e.g. TSDAE's reconstruction) or does not beat the bag-of-embeddings floor.
    """
    from embedlab.baselines import headline, record_then_check, static_floor
    from embedlab.evaluation import sts_evaluator
    from embedlab.launch import is_main_process
    from embedlab.training import publish, with_results

    curve_name, pairs = curve  # embedlab.evaluation.read_curve_pairs: the STS-B validation pairs and their name
    floor = static_floor(base_model, pairs)
    checkpoint_dir = Path("checkpoints") / name
    model, stats = run(
        base_model,
        sentences,
        settings,
        checkpoint_dir=checkpoint_dir,
        live_dir=Path(live_dir),
        evaluator=sts_evaluator(pairs, curve_name, batch_size=eval_batch_size),
        pooling=pooling,
        **method_kwargs,
    )
    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks and saves
        return None
    score = record_then_check(name, stats, floor, metrics_path, check)
    card = with_results(card, stats)
    publish(model, Path("models") / name, checkpoint_dir=checkpoint_dir, live_dir=live_dir, card=card)
    return {**stats, **headline(stats, score, floor)}


def train_stage(params, method: str, run: Runner, check: Callable[[dict[str, Any]], None] | None = None, **kw: Any):
    """Stage ``train_<method>`` (10.6.1): ``run`` on the prepared TSDAE sentences, settings ``unsupervised.<method>``.

    The stage script names its method's module, so each stage depends on its own method only.
    """
    from embedlab.cards import stage_card
    from embedlab.evaluation import read_curve_pairs
    from embedlab.io import read_parquet
    from embedlab.models import resolve_model

    u = params.unsupervised
    resolve_model(u.base_model)  # fail on a bad name before reading data or importing torch
    block = getattr(u, method)
    keys = [
        "seed",
        *(f"unsupervised.{k}" for k in ("base_model", "pooling", *kw, method)),
    ]  # kw: the method's own params
    stats = train_unsupervised(
        run,
        u.base_model,
        read_parquet("data/prepared/tsdae.parquet", ["text"])["text"][: block.max_rows],
        block.settings(params.seed),
        read_curve_pairs(params.evaluate.curve_pairs),
        name=method,
        live_dir=f"plots/train_{method}",
        metrics_path=f"metrics/train_{method}.json",
        pooling=u.pooling,
        eval_batch_size=params.evaluate.batch_size,
        check=check,
        card=stage_card(params, f"train_{method}", f"models/{method}", keys, u.base_model),
        **kw,
    )
    if stats is not None:
        print(describe(method, stats))


def describe(name: str, stats: dict[str, Any]) -> str:
    """One line for the stage's log: data, steps, time, the checks' numbers."""
    line = f"{name}: {stats['sentences']} sentences"
    if "deleted_word_fraction" in stats:
        line += f" ({stats['deleted_word_fraction']:.0%} of words deleted)"
    line += f", {stats['steps']} steps in {stats['train_seconds']:.0f} s"
    if "recon_loss_before" in stats:
        line += f"; held-out reconstruction loss {stats['recon_loss_before']:.3f} -> {stats['recon_loss_after']:.3f}"
    from embedlab.baselines import floor_key

    (score,) = (k for k in stats if k.endswith("_spearman_cosine"))  # embedlab.baselines.headline's keys
    return f"{line}; {score} {stats[score]:.4f} (bag-of-embeddings floor {stats[floor_key(score)]:.4f})"
