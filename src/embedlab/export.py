"""Fast CPU inference variants of a model: ONNX, int8-quantized ONNX and OpenVINO.

Why not ``SentenceTransformer(..., backend="onnx")``: that path needs ``optimum-onnx``, whose releases pin
``transformers<4.58`` and would downgrade this project's transformers 5. Here the transformer is exported with
``torch.onnx.export`` (offline, deterministic: same weights -> same bytes), quantized with ONNX Runtime's dynamic
int8 quantization, converted by OpenVINO, or statically quantized to int8 by NNCF for OpenVINO; only
``onnxruntime``/``onnx``/``openvino``/``nncf`` are needed.
The files follow sentence-transformers' layout (``onnx/model.onnx``, ``onnx/model_qint8.onnx``,
``openvino/openvino_model.xml``) and the ONNX graphs have optimum's input/output names, so a user with optimum
installed can load them with ``backend="onnx"`` too.

Tokenization and everything after the transformer (pooling, normalization, softmax) stay in the model's own
sentence-transformers code, so a variant differs from the torch model only in the transformer's arithmetic.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import EmbedlabError
from embedlab.io import atomic_path

Variant = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]
VARIANTS: tuple[str, ...] = ("onnx", "onnx-int8", "openvino", "openvino-int8")
VARIANT_FILES = {
    "onnx": "onnx/model.onnx",
    "onnx-int8": "onnx/model_qint8.onnx",
    "openvino": "openvino/openvino_model.xml",
    "openvino-int8": "openvino/openvino_model_qint8_quantized.xml",  # sentence-transformers' static-int8 name
}
CALIBRATION_SIZE = 300  # inputs NNCF sees to set the int8 activation ranges (sentence-transformers uses 300)
OPSET = 17
INSTALL_HINT = "pip install onnxruntime onnx openvino (embedlab's dependencies: pip install -e .)"


def _require(module: str) -> Any:
    """Import an optional backend package, or fail with one message that says how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise EmbedlabError(f"the {module} package is not installed ({err})", INSTALL_HINT) from None


def _transformer(model) -> Any:
    """The Hugging Face module inside a SentenceTransformer or CrossEncoder (its first module's ``auto_model``)."""
    auto_model = getattr(model[0], "auto_model", None)
    if auto_model is None:
        raise EmbedlabError(
            f"{type(model[0]).__name__} is not a transformer module; only transformer models can be exported",
            "export a model whose first module is sentence_transformers' Transformer",
        )
    return auto_model


def _input_names(model) -> list[str]:
    """The tokenizer outputs the transformer takes (BERT: input_ids, attention_mask, token_type_ids)."""
    sample = model.preprocess(["an example sentence"] if _is_bi_encoder(model) else [("a premise", "a hypothesis")])
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    if "input_ids" not in names or "attention_mask" not in names:
        raise EmbedlabError(f"the model's tokenizer returns {sorted(sample)}", "export a BERT-style transformer")
    return names


def _is_bi_encoder(model) -> bool:
    from sentence_transformers.cross_encoder import CrossEncoder

    return not isinstance(model, CrossEncoder)


def export_onnx(model, target: str | Path) -> Path:
    """Write the model's transformer as ONNX (dynamic batch and sequence axes) to ``target``, atomically.

    Bi-encoder graphs output ``last_hidden_state`` (pooling stays in sentence-transformers); cross-encoder graphs
    output ``logits``. The TorchScript exporter is used: it is offline and gives byte-identical files for the same
    weights, which keeps DVC outputs stable.
    """
    import torch

    _require("onnx")
    target = Path(target)
    bi = _is_bi_encoder(model)
    hf = _transformer(model).eval()
    names = _input_names(model)
    output = "last_hidden_state" if bi else "logits"

    class Graph(torch.nn.Module):
        """Positional inputs -> one named output: what ONNX needs from a Hugging Face model."""

        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, *inputs):
            out = self.hf(**dict(zip(names, inputs, strict=True)), return_dict=True)
            return out[output] if bi else out.logits

    texts = ["a short one", "a somewhat longer example sentence"]
    sample = model.preprocess(texts if bi else [("a", "b c"), ("d e f", "g")])
    args = tuple(sample[n].to("cpu") for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch", 1: "sequence"} if bi else {0: "batch"}
    with atomic_path(target) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python conditions it freezes (causal mask, padding): constant for an encoder.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Graph(),
            args,
            str(tmp),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return target


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantization of the weights (activations quantized per batch at run time), atomically.

    Per-channel weights keep the cosine scores of MiniLM within ~0.01 of fp32 (ONNX Runtime's
    ``quantize_dynamic``, the same kind of model sentence-transformers' ``export_dynamic_quantized_onnx_model``
    writes).
    """
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(target) as tmp:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    return Path(target)


def quantize_openvino_static(model, source: str | Path, target: str | Path, calibration: Sequence) -> Path:
    """Static int8 OpenVINO IR of an ONNX graph: weights and activations int8, ranges set on ``calibration``.

    What sentence-transformers calls ``openvino-qint8`` (``export_static_quantized_openvino_model``, NNCF
    post-training quantization with SmoothQuant for transformers). Unlike ONNX Runtime's dynamic int8, the
    activations' scales are fixed ahead of time, so no per-batch quantize step runs: on this project's CPU it is
    the fastest variant. ``calibration``: sentences (bi-encoder) or sentence pairs (cross-encoder) like the ones
    the model will see; the first :data:`CALIBRATION_SIZE` are used.
    """
    ov = _require("openvino")
    nncf = _require("nncf")
    inputs = list(calibration)[:CALIBRATION_SIZE]
    if not inputs:
        raise EmbedlabError("openvino-int8 needs calibration inputs", "pass some sentences (or pairs) to calibrate on")
    names = _input_names(model)
    # one input per item, unpadded, as optimum-intel feeds NNCF: padding tokens would skew the activation ranges
    samples = []
    for x in inputs:
        features = model.preprocess([x])
        samples.append({n: features[n].numpy().astype("int64") for n in names})
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    quantized = nncf.quantize(
        ov.convert_model(str(source)),
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(inputs),
    )
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    return target


def convert_openvino(source: str | Path, target: str | Path) -> Path:
    """An ONNX graph as OpenVINO IR (``target`` .xml + its .bin); :func:`export_variants` makes the folder atomic."""
    ov = _require("openvino")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(source)), str(target), compress_to_fp16=False)
    return target


def export_variants(
    model,
    out_dir: str | Path,
    variants: Sequence[str] = VARIANTS,
    *,
    save_model: bool = False,
    card=None,
    calibration: Sequence | None = None,
) -> dict[str, Path]:
    """Every requested variant of ``model`` under ``out_dir``, as {variant: file}.

    ``save_model`` saves the torch model into the same folder first: sentence-transformers' own layout, with the
    deterministic model card ``card`` (:class:`embedlab.cards.CardInfo`) when given.
    ``calibration`` (sentences, or pairs for a cross-encoder): what ``openvino-int8`` sets its ranges on.
    The ONNX graph is exported once; int8 and OpenVINO variants are derived from it. The folder appears only
    when every variant is written (a failed export leaves no half-written folder).
    """
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise EmbedlabError(f"unknown export variants {unknown}", f"choose from {', '.join(VARIANTS)}")
    if "openvino-int8" in variants and (calibration is None or len(calibration) == 0):  # before any export work
        raise EmbedlabError("openvino-int8 needs calibration inputs", "pass calibration sentences (or pairs)")
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        if save_model:  # the torch model, tokenizer and pooling config beside the variants (one loadable folder)
            model.save(str(tmp), create_model_card=False)
            if card is not None:
                from embedlab.cards import write_model_card

                write_model_card(model, tmp, card)
        _export_into(model, tmp, variants, [] if calibration is None else calibration)
    return {v: out_dir / VARIANT_FILES[v] for v in variants}


def _export_into(model, out_dir: Path, variants: Sequence[str], calibration: Sequence) -> None:
    fp32 = export_onnx(model, out_dir / VARIANT_FILES["onnx"])
    if "onnx-int8" in variants:
        quantize_int8(fp32, out_dir / VARIANT_FILES["onnx-int8"])
    if "openvino" in variants:
        convert_openvino(fp32, out_dir / VARIANT_FILES["openvino"])
    if "openvino-int8" in variants:
        quantize_openvino_static(model, fp32, out_dir / VARIANT_FILES["openvino-int8"], calibration)
    if "onnx" not in variants:
        fp32.unlink()


def file_digest(path: str | Path) -> str:
    """sha256 of a file (the export's determinism check)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Running a variant


def _runner(path: Path, threads: int | None) -> Callable[[dict[str, Any]], Any]:
    """A function from numpy inputs to the first output, for an ONNX file (ONNX Runtime) or an IR file (OpenVINO)."""
    if path.suffix == ".onnx":
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}
        return lambda feeds: session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
    ov = _require("openvino")
    config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    wanted = {i.get_any_name() for i in compiled.inputs}
    return lambda feeds: request.infer({k: v for k, v in feeds.items() if k in wanted})[0].copy()


class FastModel:
    """A SentenceTransformer or CrossEncoder whose transformer runs in an exported variant.

    ``encode`` (bi-encoder) and ``predict`` (cross-encoder) take the arguments sentence-transformers' methods take
    that matter here, sort inputs by length like them (less padding) and return numpy arrays in input order.
    """

    def __init__(self, model, path: str | Path, threads: int | None = None) -> None:
        self.model = model.eval()
        self.bi = _is_bi_encoder(model)
        self.names = _input_names(model)
        self.run = _runner(Path(path), threads)

    def _batches(self, inputs: list, batch_size: int):
        import numpy as np

        lengths = [len(x) for x in inputs] if self.bi else [len(a) + len(b) for a, b in inputs]
        order = np.argsort([-n for n in lengths], kind="stable")
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            yield idx, self.model.preprocess([inputs[i] for i in idx])

    def _forward(self, features: dict[str, Any]):
        feeds = {n: features[n].numpy().astype("int64") for n in self.names}
        return self.run(feeds)

    def encode(self, sentences: Sequence[str], batch_size: int = 64, normalize_embeddings: bool = False, **_: Any):
        """Sentence embeddings (numpy float32), pooled by the model's own modules after the exported transformer."""
        import numpy as np
        import torch

        sentences = list(sentences)
        out = np.zeros((len(sentences), self.model.get_embedding_dimension()), dtype=np.float32)
        with torch.inference_mode():
            for idx, features in self._batches(sentences, batch_size):
                features = dict(features)
                features["token_embeddings"] = torch.from_numpy(self._forward(features))
                for module in list(self.model)[1:]:
                    features = module(features)
                emb = features["sentence_embedding"]
                if normalize_embeddings:
                    emb = torch.nn.functional.normalize(emb, dim=1)
                out[idx] = emb.float().numpy()
        return out

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32, apply_softmax: bool = True, **_: Any):
        """Class scores per pair (numpy float32), softmax over the logits like ``CrossEncoder.predict``."""
        import numpy as np

        pairs = [tuple(p) for p in pairs]
        out: np.ndarray | None = None
        for idx, features in self._batches(pairs, batch_size):
            logits = np.asarray(self._forward(features), dtype=np.float32)
            if apply_softmax and logits.ndim == 2 and logits.shape[1] > 1:
                logits = np.exp(logits - logits.max(axis=1, keepdims=True))
                logits /= logits.sum(axis=1, keepdims=True)
            if out is None:
                out = np.zeros((len(pairs), *logits.shape[1:]), dtype=np.float32)
            out[idx] = logits
        return out if out is not None else np.zeros((0,), dtype=np.float32)


def score_variants(
    model,
    paths: dict[str, Path],
    sentences1: Sequence[str],
    sentences2: Sequence[str],
    gold: Sequence[float],
    *,
    batch_size: int = 64,
    repeats: int = 3,
    threads: int | None = None,
) -> dict[str, dict[str, float]]:
    """Spearman of cosine vs ``gold`` and sentences/s for the torch model and every variant.

    Timings encode all sentences of both columns, each model once per round, ``repeats`` rounds interleaved so
    that a busy CPU slows every model alike; the median is reported. ``speedup`` and ``relative_spearman`` are
    against the torch model (``model.encode``, the book's call).
    """
    import numpy as np
    from scipy.stats import spearmanr

    sentences = list(sentences1) + list(sentences2)
    n = len(sentences1)
    encoders: dict[str, Callable[[list[str]], Any]] = {
        "torch": lambda xs: model.encode(xs, batch_size=batch_size, convert_to_numpy=True)
    }
    for variant, path in paths.items():
        fast = FastModel(model, path, threads)
        encoders[variant] = lambda xs, fast=fast: fast.encode(xs, batch_size=batch_size)
    times: dict[str, list[float]] = {name: [] for name in encoders}
    embeddings: dict[str, Any] = {}
    for _ in range(repeats):
        for name, encode in encoders.items():
            start = time.perf_counter()
            embeddings[name] = np.asarray(encode(sentences), dtype=np.float32)
            times[name].append(time.perf_counter() - start)
    out: dict[str, dict[str, float]] = {}
    for name, emb in embeddings.items():
        a, b = emb[:n], emb[n:]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
        seconds = float(np.median(times[name]))
        out[name] = {
            "spearman_cosine": float(spearmanr(cos, np.asarray(gold, dtype=np.float64)).statistic),
            "sentences_per_s": len(sentences) / seconds,
        }
    for row in out.values():
        row["speedup"] = row["sentences_per_s"] / out["torch"]["sentences_per_s"]
        row["relative_spearman"] = row["spearman_cosine"] / out["torch"]["spearman_cosine"]
    return out
