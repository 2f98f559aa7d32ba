"""embedlab.cards: a deterministic README.md model card for SentenceTransformer and CrossEncoder folders.

The models are the packaged all-MiniLM-L6-v2 (no training): the state the Trainer leaves in ``model_card_data``
(start time, training logs, evaluator scores) is set by hand, so what varies between runs is present to be removed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from embedlab.cards import CARD, SECTION, CardInfo, _scrub, write_model_card

INFO = CardInfo(
    stage="finetune@improved",
    model_path="models/finetune-improved",
    params={"finetune": {"recipes": {"improved": {"learning_rate": 2.5e-05, "max_rows": 1234, "loss": "mnrl"}}}},
    data={"NLI pairs": 1234},
    metrics={"stsb_validation_spearman_cosine": 0.87654321},
    base_model="sentence-transformers/all-MiniLM-L6-v2",
)


@pytest.fixture(scope="module")
def bi_encoder():
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from embedlab.models import packaged_minilm_path

    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(
        ["a cat", "a dog", "the sun", "rain"],
        ["a kitten", "a car", "the moon", "water"],
        [0.9, 0.1, 0.4, 0.5],
        name="stsb_validation",
    )
    evaluator(model)  # the scores go into model_card_data, as after train()'s final evaluation
    data = model.model_card_data
    data.add_tags("generated_from_trainer")
    data._training_start_time = time.time() - 5  # what on_train_begin sets: the card's "Training Time"
    data.training_logs = [{"Epoch": 0.5, "Step": 1, "Training Loss": 0.5}]  # a resumed run has fewer rows
    return model


@pytest.fixture(scope="module")
def cross_encoder():
    from sentence_transformers.cross_encoder import CrossEncoder

    from embedlab.models import packaged_minilm_path
    from embedlab.training import seed_everything

    seed_everything(0)
    model = CrossEncoder(str(packaged_minilm_path()), num_labels=1, device="cpu")
    model.model_card_data._training_start_time = time.time() - 5
    return model


def _save(model, folder: Path) -> Path:
    model.save(str(folder), create_model_card=False, safe_serialization=True)
    (folder / CARD).unlink(missing_ok=True)
    return folder


def test_bi_encoder_card_is_byte_identical_and_has_no_machine_paths(bi_encoder, tmp_path):
    a = write_model_card(bi_encoder, _save(bi_encoder, tmp_path / "run-a" / "tmp.model"), INFO)
    time.sleep(1.1)  # a timestamp or a duration in seconds would now differ
    b = write_model_card(bi_encoder, _save(bi_encoder, tmp_path / "elsewhere" / "b"), INFO)
    assert a.name == "README.md" and a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert "dvc repro finetune@improved" in text
    assert "max_rows: 1234" in text and "learning_rate: 2.5e-05" in text  # the params section, as YAML
    assert "| NLI pairs | 1234 |" in text
    assert "| stsb_validation_spearman_cosine | 0.8765 |" in text
    assert "spearman_cosine" in text.split(SECTION)[1]  # the library's evaluation table is kept
    assert 'SentenceTransformer("models/finetune-improved")' in text
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in text  # the card's YAML metadata
    assert text.startswith("---\n") and text.index(SECTION) < text.index("## Model Details")
    for varying in ("Training Time", "Training Logs", "seconds", "co2_eq_emissions", " at 0x"):
        assert varying not in text, varying
    for path in (str(tmp_path), str(Path.cwd()), sys.prefix, str(Path.home())):
        assert path not in text, path
    # the model's own card data is left as the Trainer left it
    assert bi_encoder.model_card_data.training_logs and bi_encoder.model_card_data._training_start_time


def test_bi_encoder_folder_still_loads_with_the_card(bi_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = _save(bi_encoder, tmp_path / "m")
    write_model_card(bi_encoder, folder, INFO)
    loaded = SentenceTransformer(str(folder), device="cpu")
    assert loaded.encode(["a cat"]).shape == (1, 384)
    assert "dvc repro finetune@improved" in (loaded._model_card_text or "")


def test_cross_encoder_card(cross_encoder, tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder

    info = CardInfo(
        stage="train_cross_encoder",
        model_path="models/cross_encoder",
        params={"train_cross_encoder": {"epochs": 1, "batch_size": 16}},
        data={"gold pairs": 5749},
        metrics={"accuracy": 0.75},
        base_model="sentence-transformers/all-MiniLM-L6-v2",
    )
    a = write_model_card(cross_encoder, _save(cross_encoder, tmp_path / "a"), info)
    b = write_model_card(cross_encoder, _save(cross_encoder, tmp_path / "b"), info)
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert "dvc repro train_cross_encoder" in text and "batch_size: 16" in text and "| accuracy | 0.7500 |" in text
    assert 'CrossEncoder("models/cross_encoder")' in text and "Training Time" not in text
    assert str(tmp_path) not in text and sys.prefix not in text
    loaded = CrossEncoder(str(tmp_path / "a"), device="cpu")
    assert len(loaded.predict([("a cat", "a kitten")])) == 1


def test_a_project_folder_is_no_hub_base_model_and_no_metrics_is_fine(bi_encoder, tmp_path):
    info = CardInfo(
        stage="adapt_finetune@adapted",
        model_path="models/domain-adapted",
        params={"adapt_finetune": {"epochs": 1}},
        data={},
        base_model="models/domain-tsdae",
    )
    text = write_model_card(bi_encoder, _save(bi_encoder, tmp_path / "m"), info).read_text(encoding="utf-8")
    assert "base_model:" not in text.split("\n---\n", 1)[0]  # not claimed as a Hub id in the metadata
    assert "- **Base model:** `models/domain-tsdae`" in text and "### Final evaluation" not in text


def test_without_the_library_card_embedlabs_section_is_written(bi_encoder, tmp_path, monkeypatch):
    import sentence_transformers.base.model_card as library

    def broken(model):
        raise RuntimeError("template changed")

    monkeypatch.setattr(library, "generate_model_card", broken)
    a = write_model_card(bi_encoder, _save(bi_encoder, tmp_path / "a"), INFO)
    b = write_model_card(bi_encoder, _save(bi_encoder, tmp_path / "b"), INFO)
    text = a.read_text(encoding="utf-8")
    assert a.read_bytes() == b.read_bytes() and text.startswith("# finetune-improved\n\n## How this model was made")
    assert "dvc repro finetune@improved" in text and "0.8765" in text


def test_scrub_makes_machine_paths_relative(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    (checkout / "models" / "base").mkdir(parents=True)
    monkeypatch.chdir(checkout)
    folder = checkout / "models" / ".tmp-finetune-improved"
    text = (
        f'"decoder_name_or_path": "{checkout}/models/base/all-MiniLM-L6-v2"\n'
        f"saved in {folder}/config.json\n"
        f"{sys.prefix}/lib/site-packages/x\n"
        "<function f at 0x7f3a2b1c>\n"
    )
    out = _scrub(text, folder, "models/finetune-improved")
    assert '"./models/base/all-MiniLM-L6-v2"' in out
    assert "saved in models/finetune-improved/config.json" in out
    assert "<python>/lib/site-packages/x" in out and "<function f>" in out
    assert str(tmp_path) not in out


def test_card_info_command():
    assert INFO.command == "dvc repro finetune@improved"
