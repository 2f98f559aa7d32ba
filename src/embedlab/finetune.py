"""10.5.1: supervised fine-tuning of a pretrained sentence embedder on NLI pairs, by named recipe.

A recipe fixes what the model sees and which loss reads it; the Trainer settings (epochs, batch size, learning
rate, warmup...) come separately from params (:class:`embedlab.training.TrainSettings`), so each profile can
give each recipe its own.

* ``book``: the book's code exactly: every (premise, hypothesis) pair, *contradictions and neutrals included*,
  is an (anchor, positive) pair for MultipleNegativesRankingLoss, with the default sampler. Teaching the model
  that a contradiction is a paraphrase is why this lowers all-MiniLM-L6-v2 on STS-B (0.8672 -> 0.8485 in the
  book).
* ``improved``: only entailments are positives, the contradiction of the same premise is the hard negative
  (:func:`embedlab.nli.mnrl_triplets`), batches never repeat a text (``NO_DUPLICATES``), the loss is MNRL; with
  a lower learning rate and enough rows (params; the CPU profile: every triplet of the pool), it lifts the model
  on STS-B and SICK-R alike.
* the ablation, one ingredient of ``improved`` changed each (the report's ablation table says which one moves
  the score): ``improved-pairs`` drops the hard negative ((premise, entailment) pairs), ``improved-gist`` uses
  GISTEmbed guided by the untouched model (an in-batch "negative" the guide finds at least as similar as the
  positive is masked instead of pushed away), ``improved-sampler`` the default sampler (a batch may repeat a
  text); ``improved-lr`` and ``improved-rows`` are ``improved`` itself with the book's learning rate or fewer
  rows in params (the CPU profile measures the other ingredients at ``improved-rows``' rows).
* ``matryoshka``: ``improved`` with its loss also applied to the first 256, 128 and 64 of the 384 dimensions
  (``MatryoshkaLoss``), so a truncated embedding (``SentenceTransformer(path, truncate_dim=64)``) stays useful: a
  smaller index and faster search for a little accuracy.

Adding a recipe is one entry in :data:`RECIPES` plus its settings under ``finetune.recipes`` in params.yaml (and
the profiles): the stage ``finetune@<name>`` follows from params, and names not in :data:`RECIPES` are refused
before any work. Public contract (other stages call it): :func:`run_finetune`, :func:`get_recipe`, :data:`RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ParamsError


@dataclass(frozen=True)
class Recipe:
    """What a recipe feeds the loss (all pairs as positives, entailment pairs, or entailment triplets with a
    contradiction as hard negative), which loss, which sampler."""

    data: Literal["all_pairs", "entailment_pairs", "triplets"]
    loss: Literal["mnrl", "gist"]
    batch_sampler: Literal["batch_sampler", "no_duplicates"]
    matryoshka_dims: tuple[int, ...] = ()  # non-empty: the loss also at these leading dimensions (MatryoshkaLoss)


IMPROVED = Recipe(data="triplets", loss="mnrl", batch_sampler="no_duplicates")
RECIPES: dict[str, Recipe] = {  # the registry: params, profiles and tests read the names from here
    "book": Recipe(data="all_pairs", loss="mnrl", batch_sampler="batch_sampler"),
    "improved": IMPROVED,
    "improved-pairs": replace(IMPROVED, data="entailment_pairs"),
    "improved-gist": replace(IMPROVED, loss="gist"),
    "improved-sampler": replace(IMPROVED, batch_sampler="batch_sampler"),
    "improved-lr": IMPROVED,  # its params: the book's learning rate
    "improved-rows": IMPROVED,  # its params: the book's number of rows
    "matryoshka": replace(IMPROVED, matryoshka_dims=(384, 256, 128, 64)),
}


def all_pairs(nli):
    """The book's data: (anchor = premise, positive = hypothesis) for every label."""
    from datasets import Dataset

    from embedlab.nli import check_columns

    check_columns(nli, ["premise", "hypothesis"], "NLI pool")
    return Dataset.from_dict({"anchor": nli["premise"], "positive": nli["hypothesis"]})


def recipe_dataset(recipe: Recipe, nli, seed: int = 42, max_rows: int | None = None) -> tuple[Any, dict[str, int]]:
    """The NLI pool in the shape ``recipe`` feeds its loss, with counts for the stage's log.

    ``max_rows``: the first N training rows (pairs, or triplets of whole premise groups; all when None), so a
    smaller run keeps the hard negatives a prefix of the pool would split off.
    """
    from embedlab.nli import first_rows

    if recipe.data == "all_pairs":
        ds = all_pairs(first_rows(nli, max_rows))
        return ds, {"pairs": len(ds)}
    from embedlab.nli import mnrl_triplets

    triplets, counts = mnrl_triplets(nli, seed, limit=max_rows)
    if recipe.data == "entailment_pairs":  # the same (premise, entailment) rows, without their hard negative
        return triplets.remove_columns("negative"), {"pairs": len(triplets)}
    return triplets, counts


def recipe_loss(recipe: Recipe, model, base_model: str):
    """MNRL, or GISTEmbed guided by a frozen copy of the untouched ``base_model``; wrapped in MatryoshkaLoss when
    the recipe names dimensions (the guide compares full embeddings; the model's are truncated per dimension)."""
    from sentence_transformers.sentence_transformer import losses

    from embedlab.launch import world_size  # DDP: negatives from every process

    if recipe.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model, gather_across_devices=world_size() > 1)
    else:
        from embedlab.models import load_sentence_transformer

        guide = load_sentence_transformer(base_model, device=str(model.device))
        guide.eval()
        for p in guide.parameters():
            p.requires_grad_(False)
        loss = losses.GISTEmbedLoss(model, guide, gather_across_devices=world_size() > 1)
    if recipe.matryoshka_dims:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(recipe.matryoshka_dims))
    return loss


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name is a params error naming the known ones."""
    if name not in RECIPES:
        raise ParamsError(
            f"unknown fine-tuning recipe {name!r}", f"use one of {', '.join(RECIPES)} (embedlab.finetune)"
        )
    return RECIPES[name]


def run_finetune(
    base_model: str,
    nli,
    recipe: str | Recipe,
    settings,
    output_dir: str | Path,
    max_rows: int | None = None,
    **where: Any,
) -> dict[str, Any]:
    """Fine-tune ``base_model`` (name or path) on ``nli`` with recipe ``recipe`` and save it to ``output_dir``.

    ``nli``: a ``datasets.Dataset`` with ``premise``, ``hypothesis``, ``label`` (0 entailment, 1 neutral,
    2 contradiction); ``recipe``: a :data:`RECIPES` name, or an explicit :class:`Recipe` (to compare variants);
    ``settings``: a :class:`embedlab.params.TrainSettings`; ``max_rows``: train on the first N rows of the recipe's
    data (:func:`recipe_dataset`); ``where``: ``checkpoint_dir``, ``live_dir``,
    ``evaluator`` (scored every ``settings.eval_steps`` steps into the curves and once at the end) and ``check``,
    as :func:`embedlab.training.train_checked` takes them: an STS evaluator's final Spearman must beat a random
    ranking, and ``check(stats)`` must pass, or nothing is saved. Returns the training stats (steps, train_loss,
    train_seconds, samples_per_second, rows, fp16, final_eval) plus ``data`` (pair or triplet counts).
    """
    from embedlab.models import load_sentence_transformer
    from embedlab.training import seed_everything, train_checked

    spec = recipe if isinstance(recipe, Recipe) else get_recipe(recipe)
    dataset, counts = recipe_dataset(spec, nli, settings.seed, max_rows)
    seed_everything(settings.seed)
    model = load_sentence_transformer(base_model)
    loss = recipe_loss(spec, model, base_model)
    what = f"{base_model} fine-tuned with {spec}"
    if (check := where.pop("check", None)) is not None:  # the caller's check sees the data counts too
        where["check"] = lambda stats: check({**stats, "data": counts})
    stats = train_checked(
        model, dataset, loss, settings, output_dir, batch_sampler=spec.batch_sampler, what=what, **where
    )
    return {**stats, "data": counts}
