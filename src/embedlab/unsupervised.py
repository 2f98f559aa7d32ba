"""What every unsupervised stage (10.6) does around its method: train, check against trivial baselines, save.

TSDAE (:mod:`embedlab.tsdae`), SimCSE (:mod:`embedlab.simcse`) and Contrastive Tension (:mod:`embedlab.ct`) train
the same encoder (the base's transformer + a new pooling) on unlabelled sentences. Whatever the method, a model
is only saved when its STS-B validation score beats averaging the base's input word embeddings (and, for TSDAE,
when the held-out reconstruction loss dropped): a stage refuses to hand a collapsed model to the next one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Method = Literal["tsdae", "simcse", "ct"]
METHODS: tuple[Method, ...] = ("tsdae", "simcse", "ct")


def runner(method: Method):
    """The ``run_<method>`` function: ``(base_model, sentences, settings, **kw) -> (model, stats)``."""
    if method == "tsdae":
        from embedlab.tsdae import run_tsdae

        return run_tsdae
    if method == "simcse":
        from embedlab.simcse import run_simcse

        return run_simcse
    if method == "ct":
        from embedlab.ct import run_ct

        return run_ct
    raise ValueError(f"unknown unsupervised method {method!r}; one of {METHODS}")


def train_checked(
    method: Method,
    base_model: str,
    sentences: list[str],
    settings,
    stsb_validation,
    *,
    name: str,
    live_dir: str | Path,
    metrics_path: str | Path,
    pooling: str = "cls",
    eval_batch_size: int = 64,
    **method_kwargs: Any,
) -> dict[str, Any] | None:
    """Train ``method`` into ``models/<name>``; statistics to ``metrics_path``; None on non-zero DDP ranks.

    Raises (nothing saved, statistics still written to explain why) when the model fails its checks.
    """
    from embedlab.evaluation import sts_evaluator
    from embedlab.io import write_json
    from embedlab.launch import is_main_process
    from embedlab.training import publish
    from embedlab.tsdae import check_beats_floor, check_learned, static_floor, sts_from, summary

    floor = static_floor(base_model, stsb_validation)
    checkpoint_dir = Path("checkpoints") / name
    model, stats = runner(method)(
        base_model,
        sentences,
        settings,
        checkpoint_dir=checkpoint_dir,
        live_dir=Path(live_dir),
        evaluator=sts_evaluator(stsb_validation, "stsb_validation", batch_size=eval_batch_size),
        pooling=pooling,
        **method_kwargs,
    )
    if not is_main_process():  # under a distributed launch every rank trains; rank 0 checks and saves
        return None
    score = sts_from(stats)
    write_json(Path(metrics_path), summary(stats, score, floor))
    if method == "tsdae":
        check_learned(stats)
    check_beats_floor(name, score, floor)
    publish(model, Path("models") / name, checkpoint_dir=checkpoint_dir, live_dir=live_dir)
    return {**stats, "stsb_validation_spearman_cosine": score, "stsb_validation_floor": floor}


def describe(name: str, stats: dict[str, Any]) -> str:
    """One line for the stage's log: data, steps, time, the checks' numbers."""
    line = f"{name}: {stats['sentences']} sentences"
    if "deleted_word_fraction" in stats:
        line += f" ({stats['deleted_word_fraction']:.0%} of words deleted)"
    line += f", {stats['steps']} steps in {stats['train_seconds']:.0f} s"
    if "recon_loss_before" in stats:
        line += f"; held-out reconstruction loss {stats['recon_loss_before']:.3f} -> {stats['recon_loss_after']:.3f}"
    return (
        f"{line}; STS-B validation spearman_cosine {stats['stsb_validation_spearman_cosine']:.4f} "
        f"(bag-of-embeddings floor {stats['stsb_validation_floor']:.4f})"
    )
