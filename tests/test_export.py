"""The export library (ONNX, int8 ONNX, OpenVINO) on the packaged all-MiniLM-L6-v2: same numbers, atomic files."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import augsbert, export
from embedlab.errors import EmbedlabError

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument on a stage in front of a large and cheering crowd.",
    "A cat sleeps.",
    "The stock market fell sharply today after the announcement.",
    "Two dogs run through the snow.",
    "hello",
]


@pytest.fixture(scope="module")
def minilm():
    from embedlab.models import load_sentence_transformer

    return load_sentence_transformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")


@pytest.fixture(scope="module")
def exported(minilm, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "minilm"
    return out, export.export_variants(minilm, out, save_model=True, calibration=SENTENCES)


def test_every_variant_is_written_in_sentence_transformers_layout(exported):
    out, paths = exported
    assert set(paths) == set(export.VARIANTS)
    for variant, path in paths.items():
        assert path == out / export.VARIANT_FILES[variant] and path.is_file()
    assert (out / "openvino/openvino_model.bin").is_file() and (out / "modules.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_variants_embed_like_the_torch_model(minilm, exported):
    _, paths = exported
    ref = minilm.encode(SENTENCES, batch_size=4)
    for variant, path in paths.items():
        emb = export.FastModel(minilm, path).encode(SENTENCES, batch_size=4)
        cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
        assert emb.shape == ref.shape
        assert cos.min() > (0.9999 if variant in ("onnx", "openvino") else 0.97), variant


def test_onnx_export_is_deterministic(minilm, exported, tmp_path):
    _, paths = exported
    again = export.export_onnx(minilm, tmp_path / "model.onnx")
    assert export.file_digest(again) == export.file_digest(paths["onnx"])


def test_static_int8_needs_calibration_inputs_before_any_work(minilm, tmp_path):
    with pytest.raises(EmbedlabError, match="calibration"):
        export.export_variants(minilm, tmp_path / "out", ["onnx", "openvino-int8"])
    assert not list(tmp_path.iterdir())


def test_a_failed_export_leaves_no_folder(minilm, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "quantize_int8", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_variants(minilm, tmp_path / "out", ["onnx", "onnx-int8"])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EmbedlabError, match="unknown export variants"):
        export.export_variants(minilm, tmp_path / "out", ["tensorrt"])


def test_score_variants_reports_quality_and_speed_beside_torch(minilm, exported, monkeypatch):
    from types import SimpleNamespace

    from scipy.stats import spearmanr

    _, paths = exported
    s1, s2, gold = SENTENCES[:3], SENTENCES[3:], [1.0, 0.5, 0.0]
    # a clock read at the start and end of each timed pass (torch, onnx; 3 rounds): torch takes 2, 4, 3 s, onnx 1,
    # 0.5, 2 s, so the medians are 3 s and 1 s for the 6 sentences: 2 and 6 sentences/s
    ticks = iter([0.0, 2.0, 10.0, 11.0, 20.0, 24.0, 30.0, 30.5, 40.0, 43.0, 50.0, 52.0])
    monkeypatch.setattr(export, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    scores = export.score_variants(minilm, {"onnx": paths["onnx"]}, s1, s2, gold, batch_size=4, repeats=3)
    assert next(ticks, None) is None  # every reading used: 3 rounds of both models
    assert {k: (v["sentences_per_s"], v["speedup"]) for k, v in scores.items()} == {
        "torch": (2.0, 1.0),
        "onnx": (6.0, 3.0),
    }
    a, b = minilm.encode(s1), minilm.encode(s2)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    expected = spearmanr(cos, gold).statistic  # computed here from the torch model's own embeddings
    assert scores["torch"]["spearman_cosine"] == pytest.approx(expected, abs=1e-12)
    assert scores["onnx"]["spearman_cosine"] == pytest.approx(expected, abs=1e-6)
    assert scores["onnx"]["relative_spearman"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8", "openvino-int8"])
def test_fast_silver_labels_match_the_book_predict(backend):
    model = augsbert.build_cross_encoder("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=32)
    ref = augsbert.positive_probabilities(model, SENTENCES, SENTENCES[::-1], batch_size=4)
    fast = augsbert.positive_probabilities(model, SENTENCES, SENTENCES[::-1], batch_size=4, backend=backend)
    assert fast.shape == ref.shape and fast.dtype == np.float32
    assert np.abs(fast - ref).max() < (1e-5 if backend == "onnx" else 0.02)
    with pytest.raises(EmbedlabError, match="unknown labelling backend"):
        augsbert.positive_probabilities(model, SENTENCES, SENTENCES, backend="tensorrt")
