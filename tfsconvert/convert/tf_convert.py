"""`tfsconvert saved-model` and `tfsconvert onnx` for TensorFlow sources.

Load the source, settle the signature names, write the target into a hidden temp dir, prove it
gives the source's answers (loaded the way its server loads it), record golden requests, and
only then publish the version directory (tfsconvert.layout.publish).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfsconvert import golden, layout
from tfsconvert.convert.names import generic_findings, parse_mapping
from tfsconvert.convert.result import GOLDEN_FILE, ConversionResult, Progress, check_parity
from tfsconvert.convert.tf_source import TfSource
from tfsconvert.errors import InputError
from tfsconvert.inspect.checkpoint import checkpoint_prefix
from tfsconvert.inspect.detect import SAVEDMODEL_FILES, detect
from tfsconvert.inspect.savedmodel import DEFAULT_SIGNATURE
from tfsconvert.model import Signature

TF_FORMATS = ("frozen-graph", "keras", "tf1-checkpoint", "savedmodel")
# (atol, rtol) per target: the SavedModel runs the same kernels; ONNX Runtime fuses differently.
TOLERANCES = {"savedmodel": (1e-6, 1e-6), "onnx": (1e-5, 1e-5)}
DEFAULT_SAMPLES = 256  # parity rows: cheap in-process, and enough to reach the rarer branches
GOLDEN_RECORDS = 8  # of those, written as golden requests and warmup records
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


@dataclass
class ConvertOptions:
    """Everything the `saved-model` / `onnx` commands accept besides SRC."""

    version: str | None = None
    base_path: Path | None = None
    name: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    signature_name: str = DEFAULT_SIGNATURE
    source_signature: str | None = None
    samples: int | None = None
    sample_inputs: Path | None = None
    atol: float | None = None
    rtol: float | None = None
    opset: int = 17
    force: bool = False


def _check_source(src: Path) -> str:
    """The source's format, or a clear error for the classic wrong-artifact mistakes."""
    kind = detect(src)
    if kind == "savedmodel" and src.is_file():
        whole = src.parent if src.name in SAVEDMODEL_FILES else None
        raise InputError(
            "not-a-frozen-graph",
            f"{src} is a SavedModel's saved_model.pb, not a frozen GraphDef; a SavedModel is its whole "
            f"directory (saved_model.pb + variables/)",
            f"pass the directory: tfsconvert saved-model {whole}" if whole else
            "rename it back to saved_model.pb inside its SavedModel directory and pass that directory")
    if kind == "base-path":
        raise InputError("base-path-as-source", f"{src} is a TF Serving base path (it holds version dirs)",
                         f"convert one version: tfsconvert saved-model {src}/<N>")
    if kind not in TF_FORMATS:
        raise InputError("unsupported-format", f"{src} is a {kind} model, not a TensorFlow model",
                         "saved-model converts frozen .pb/.pbtxt graphs, Keras .keras/.h5 files, TF1 checkpoints "
                         "and SavedModel directories")
    return kind


def _defaults(src: Path, kind: str) -> tuple[str, Path]:
    """Default model name (the source's stem) and base path (./models/<name>).

    A SavedModel that is already a version dir (`models/m/2`) is re-versioned next to itself.
    """
    if kind == "savedmodel" and layout.is_canonical_version(src.name):
        return src.resolve().parent.name, src.parent
    stem_of = checkpoint_prefix(src) if kind == "tf1-checkpoint" else src
    name = stem_of.name.split(".")[0] or "model"
    return name, Path("models") / name


def _check_target(src: Path, kind: str, target: Path) -> None:
    """Sources are read-only: refuse to publish into or over them."""
    source_dir = (src if src.is_dir() else src.parent).resolve()
    target = target.resolve()
    if kind == "savedmodel" and (target == source_dir or source_dir in target.parents):
        raise InputError("target-is-source", f"{target} is inside the source SavedModel {source_dir}; "
                         "the source is never modified",
                         f"publish outside it, e.g. --base-path {source_dir.parent / (source_dir.name + '-serving')}")


def _load(src: Path, kind: str, options: ConvertOptions) -> TfSource:
    if kind == "frozen-graph":
        from tfsconvert.convert import frozen_graph
        return frozen_graph.load(src)
    if kind == "tf1-checkpoint":
        from tfsconvert.convert import checkpoint
        return checkpoint.load(src)
    if kind == "keras":
        from tfsconvert.convert import keras
        return keras.load(src)
    from tfsconvert.convert import savedmodel
    return savedmodel.load(src, options.source_signature)


def _samples(signature: Signature, options: ConvertOptions, source: TfSource) -> list[dict[str, np.ndarray]]:
    if options.sample_inputs is not None:
        if options.samples is not None:
            raise InputError("bad-option", "--samples and --sample-inputs exclude each other",
                             "pass one: --samples N synthesizes N inputs, --sample-inputs FILE reads them")
        return golden.load_samples(options.sample_inputs, signature.inputs)
    count = DEFAULT_SAMPLES if options.samples is None else options.samples
    if count < 1:
        raise InputError("bad-option", f"--samples {count}: at least one sample is needed to check parity",
                         f"use --samples {DEFAULT_SAMPLES}")
    return golden.synthesize(signature.inputs, count, makers=source.value_makers())


def _write_golden(dest: Path, samples, expected, signature: Signature, options: ConvertOptions,
                  atol: float, rtol: float) -> None:
    records = [golden.GoldenRecord(
        id=f"sample-{i}", signature_name=options.signature_name,
        request=golden.rest_request(feeds, signature.inputs, options.signature_name),
        response=golden.rest_response(outputs, signature.outputs), rtol=rtol, atol=atol)
        for i, (feeds, outputs) in enumerate(zip(samples, expected))]
    (dest / GOLDEN_FILE).parent.mkdir(parents=True, exist_ok=True)
    golden.write_golden(dest / GOLDEN_FILE, records)


def _release(source: TfSource) -> None:
    """Once the target is written, the source's answers are all that is left to use: free its graph
    and session before the written model is loaded, so a big model is held once, not twice."""
    from tfsconvert.tf_runtime import release_memory

    source.close()
    release_memory()


def _build_savedmodel(source: TfSource, dest: Path, samples, options: ConvertOptions, progress: Progress):
    from tfsconvert.tf_runtime import ServingSession

    progress("writing the SavedModel")
    source.write_savedmodel(dest, options.signature_name)
    _release(source)
    progress("checking parity: loading the SavedModel as TF Serving does")
    with ServingSession(dest) as served:
        return [served.run(options.signature_name, feeds) for feeds in samples]


def _build_onnx(source: TfSource, dest: Path, samples, options: ConvertOptions, progress: Progress):
    from tfsconvert.convert.onnx_writer import onnx_runner, savedmodel_to_onnx

    with tempfile.TemporaryDirectory(prefix="tfsconvert-") as scratch:
        progress("writing an intermediate SavedModel")
        saved, key, names = source.onnx_input(Path(scratch), options.signature_name)
        _release(source)
        progress(f"converting to ONNX with tf2onnx (opset {options.opset})")
        savedmodel_to_onnx(saved, key, dest / "model.onnx", options.opset, names)
    progress("checking parity with ONNX Runtime")
    run = onnx_runner(dest / "model.onnx")
    return [run(feeds) for feeds in samples]


def _written_signature(dest: Path, target: str, signature_name: str) -> Signature:
    """The signature as a server will see it, read back from the written files."""
    if target == "savedmodel":
        from tfsconvert.inspect.savedmodel import read_savedmodel
        return read_savedmodel(dest, None)[0].signatures[signature_name]
    from tfsconvert.inspect import onnx_model
    return next(iter(onnx_model.describe(dest / "model.onnx").versions[0].signatures.values()))


def convert(src: Path, target: str, options: ConvertOptions, progress: Progress = lambda _: None) -> ConversionResult:
    """Convert a TensorFlow source into a published `<base>/<version>/` for `target`."""
    kind = _check_source(src)
    inputs, outputs = parse_mapping(options.inputs, "--input"), parse_mapping(options.outputs, "--output")
    default_name, default_base = _defaults(src, kind)
    name = options.name or default_name
    base = options.base_path or (Path("models") / name if options.name else default_base)
    version = layout.resolve_version(base, options.version)
    _check_target(src, kind, layout.ensure_free(base, version, options.force))
    default_atol, default_rtol = TOLERANCES[target]
    atol = default_atol if options.atol is None else options.atol
    rtol = default_rtol if options.rtol is None else options.rtol

    progress(f"loading TensorFlow and {src}")
    source = _load(src, kind, options)
    try:
        signature = source.resolve(inputs, outputs)
        samples = _samples(signature, options, source)
        progress(f"running the source on {len(samples)} samples")
        expected = [source.run(feeds) for feeds in samples]
        written: dict = {}

        def build(dest: Path) -> None:
            builder = _build_savedmodel if target == "savedmodel" else _build_onnx
            actual = builder(source, dest, samples, options, progress)
            written["parity"] = check_parity(
                expected, actual, atol, rtol, what="the converted model",
                hint="find what makes the source non-deterministic (random ops, training-mode layers), "
                     "or accept the difference with --atol/--rtol")
            written["signature"] = _written_signature(dest, target, options.signature_name)
            progress("writing golden requests")
            _write_golden(dest, samples[:GOLDEN_RECORDS], expected, signature, options, atol, rtol)
            if target == "savedmodel":
                from tfsconvert.warmup import write_warmup
                write_warmup(dest / WARMUP_FILE, samples[:GOLDEN_RECORDS], name, options.signature_name)

        progress("publishing")
        artifact = layout.publish(base, version, build, force=options.force)
    finally:
        source.close()
    files = {"golden": str(artifact / GOLDEN_FILE)}
    if target == "savedmodel":
        files["warmup"] = str(artifact / WARMUP_FILE)
    else:
        files["model"] = str(artifact / "model.onnx")
    return ConversionResult(
        source=str(src), source_format=kind, target=target, model_name=name, base_path=str(base),
        version=version, artifact=str(artifact), signature_name=options.signature_name,
        signature=written["signature"], parity=written["parity"], samples=len(samples), files=files,
        findings=generic_findings(signature, source.source_names(), src), notes=source.notes)
