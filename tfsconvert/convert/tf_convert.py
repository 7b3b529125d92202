"""`tfsconvert saved-model` and `tfsconvert onnx` for TensorFlow sources: what is theirs in the pipeline.

The steps are tfsconvert.convert.pipeline's; here: load the source (tf_source), settle the signature
names, make or read samples and run the source on them, write the SavedModel (or the ONNX file
through an intermediate SavedModel), run it as TF Serving loads it (or with ONNX Runtime), and the
golden requests and warmup records of every written signature.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsconvert import layout
from tfsconvert.convert import pipeline
from tfsconvert.convert.names import generic_findings, parse_mapping
from tfsconvert.convert.options import DEFAULT_OPSET, ConvertOptions
from tfsconvert.convert.result import ConversionResult, Progress, check_parity
from tfsconvert.convert.tf_source import TfSource
from tfsconvert.errors import InputError
from tfsconvert.golden import GoldenRecord
from tfsconvert.inspect.checkpoint import checkpoint_prefix
from tfsconvert.inspect.detect import SAVEDMODEL_FILES
from tfsconvert.model import Signature
from tfsconvert.naming import API_KEYS, CLASSIFY_METHOD, GOLDEN_FILE, PREDICT_METHOD, WARMUP_FILE
from tfsconvert.rest_codec import example_request, rest_request, rest_response, results_response
from tfsconvert.samples import ValueMaker, load_samples, synthesize

TF_FORMATS = ("frozen-graph", "keras", "tf1-checkpoint", "savedmodel")
# (atol, rtol) per target: the SavedModel runs the same kernels; ONNX Runtime fuses differently.
TOLERANCES = {"savedmodel": (1e-6, 1e-6), "onnx": (1e-5, 1e-5)}
DEFAULT_SAMPLES = 256  # parity rows: cheap in-process, and enough to reach the rarer branches
GOLDEN_RECORDS = 8  # of those, written as golden requests and warmup records
BIG_SOURCE_BYTES = 64 << 20  # from this size on, memory freed between phases is worth a collection


def _check_source(src: Path, kind: str) -> None:
    """A clear error for the classic wrong-artifact mistakes and for sources that are not TensorFlow models."""
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


def load_source(src: Path, kind: str, source_signature: str | None = None) -> TfSource:
    """The source loaded by TensorFlow itself from the original file (Keras, graph import, checkpoint restore,
    SavedModel loader); nothing of it is rewritten."""
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
    return savedmodel.load(src, source_signature)


def _samples(signature: Signature, options: ConvertOptions,
             makers: dict[str, ValueMaker]) -> list[dict[str, np.ndarray]]:
    if options.sample_inputs is not None:
        if options.samples is not None:
            raise InputError("bad-option", "--samples and --sample-inputs exclude each other",
                             "pass one: --samples N synthesizes N inputs, --sample-inputs FILE reads them")
        return load_samples(options.sample_inputs, signature.inputs)
    count = DEFAULT_SAMPLES if options.samples is None else options.samples
    if count < 1:
        raise InputError("bad-option", f"--samples {count}: at least one sample is needed to check parity",
                         f"use --samples {DEFAULT_SAMPLES}")
    return synthesize(signature.inputs, count, makers=makers)


def _run_source(source: TfSource, samples, signature: Signature, options: ConvertOptions,
                makers: dict[str, ValueMaker]) -> list[dict[str, np.ndarray]]:
    """The source's outputs on every sample; a sample TensorFlow refuses is bad input (exit 2), not a crash."""
    from tfsconvert.convert.rejected_samples import rejected
    from tfsconvert.runtimes.tf import import_tf

    op_error = import_tf().errors.OpError
    outputs = []
    for index, feeds in enumerate(samples):
        try:
            outputs.append(source.run(feeds))
        except op_error as error:
            raise rejected(source.path, error, feeds, signature, makers, options.sample_inputs, index) from None
    return outputs


@dataclass
class _Checked:
    """One signature of the target: its samples and the source's answers on them."""

    key: str
    signature: Signature
    samples: list[dict[str, np.ndarray]]
    expected: list[dict[str, np.ndarray]]
    first: bool = False  # the converted signature (its parity rows keep the bare aliases)

    def labelled(self, values: list[dict]) -> list[dict]:
        """Outputs keyed `key/alias` for a kept signature, so one parity table holds them all."""
        return values if self.first else [{f"{self.key}/{a}": v for a, v in row.items()} for row in values]


def _kept(source: TfSource, options: ConvertOptions, count: int) -> list[_Checked]:
    """The source's other signatures, written unchanged: synthesized samples and the source's answers."""
    checked = []
    kept = source.kept_signatures(options.signature_name)
    if kept:
        source.notes.append(f"other signatures kept (checked for parity, with golden and warmup records): "
                            f"{', '.join(kept)}")
    for seed, (key, signature) in enumerate(kept.items(), start=1):  # other values than the converted one's
        samples = synthesize(signature.inputs, count, seed=seed, makers=source.kept_makers(key))
        checked.append(_Checked(key, signature, samples, [source.run_kept(key, feeds) for feeds in samples]))
    return checked


def _api(signature: Signature) -> str:
    """The API a signature's records use: its classify/regress method when it has that API's one
    `inputs` tensor, else predict."""
    return signature.method if signature.method in API_KEYS and list(signature.inputs) == ["inputs"] else \
        PREDICT_METHOD


def _golden_records(checked: _Checked, written: Signature, atol: float, rtol: float) -> list[GoldenRecord]:
    """Golden requests for one signature as written: `:classify`/`:regress` bodies for those APIs, else `:predict`."""
    from tfsconvert.convert.example_inputs import example_json

    records = []
    for i, (feeds, outputs) in enumerate(zip(checked.samples[:GOLDEN_RECORDS], checked.expected)):
        if _api(written) != PREDICT_METHOD:
            examples = [example_json(data) for data in feeds["inputs"].ravel()]
            request = example_request(examples, checked.key)
            response = results_response(outputs, written.method == CLASSIFY_METHOD)
        else:
            request = rest_request(feeds, checked.signature.inputs, checked.key)
            response = rest_response(outputs, checked.signature.outputs)
        name = "sample" if checked.first else checked.key
        records.append(GoldenRecord(f"{name}-{i}", checked.key, request, response, rtol=rtol, atol=atol))
    return records


def _release(source: TfSource) -> None:
    """Once the target is written, the source's answers are all that is left to use: free its graph
    and session before the written model is loaded, so a big model is held once, not twice. The
    collection that hands the memory back costs about 0.5 s, so it runs for big sources only."""
    from tfsconvert.runtimes.tf import release_memory

    source.close()
    if _disk_size(source.path) >= BIG_SOURCE_BYTES:
        release_memory()


def _disk_size(path: Path) -> int:
    """Bytes of a source: its file, its directory's files, or a checkpoint prefix's files."""
    if path.is_file():
        return path.stat().st_size
    files = path.rglob("*") if path.is_dir() else path.parent.glob(path.name + ".*")
    return sum(f.stat().st_size for f in files if f.is_file())


@dataclass
class _TfBuild:
    """pipeline.Build for a TensorFlow source: the SavedModel or ONNX target, its golden and warmup records."""

    source: TfSource
    plan: pipeline.Plan
    options: ConvertOptions
    checked: list[_Checked]
    signatures: dict[str, Signature] = field(default_factory=dict)  # as written, the converted first

    def write(self, dest: Path, progress: Progress) -> None:
        if self.plan.target == "savedmodel":
            progress("writing the SavedModel")
            self.source.write_savedmodel(dest, self.options.signature_name)
            _release(self.source)
            return
        from tfsconvert.convert.onnx_writer import savedmodel_to_onnx

        opset = DEFAULT_OPSET if self.options.opset is None else self.options.opset
        with tempfile.TemporaryDirectory(prefix="tfsconvert-") as scratch:
            progress("writing an intermediate SavedModel")
            saved, key, names = self.source.onnx_input(Path(scratch), self.options.signature_name)
            _release(self.source)
            progress(f"converting to ONNX with tf2onnx (opset {opset})")
            savedmodel_to_onnx(saved, key, dest / "model.onnx", opset, names)

    def parity(self, dest: Path, progress: Progress) -> list:
        actual = _run_savedmodel(dest, self.checked, progress) if self.plan.target == "savedmodel" else \
            _run_onnx(dest, self.checked, progress)
        diffs = check_parity(
            _by_sample([c.labelled(c.expected) for c in self.checked]),
            _by_sample([c.labelled(values) for c, values in zip(self.checked, actual)]), self.plan.atol,
            self.plan.rtol, what="the converted model",
            hint="find what makes the source non-deterministic (random ops, training-mode layers), "
                 "or accept the difference with --atol/--rtol")
        self.signatures = _written_signatures(dest, self.plan.target, self.options.signature_name)
        return diffs

    def golden(self, dest: Path) -> list[GoldenRecord]:
        return [record for c in self.checked
                for record in _golden_records(c, self.signatures[c.key], self.plan.atol, self.plan.rtol)]

    def warmup(self, dest: Path) -> list[bytes]:
        if self.plan.target != "savedmodel":
            return []
        from tfsconvert.warmup import warmup_records

        return [record for c in self.checked for record in warmup_records(
            c.samples[:GOLDEN_RECORDS], self.plan.name, c.key, _api(self.signatures[c.key]))]


def _run_savedmodel(dest: Path, checked: list[_Checked], progress: Progress) -> list[list[dict]]:
    from tfsconvert.runtimes.tf import ServingSession

    progress("checking parity: loading the SavedModel as TF Serving does")
    with ServingSession(dest) as served:
        return [[served.run(c.key, feeds) for feeds in c.samples] for c in checked]


def _run_onnx(dest: Path, checked: list[_Checked], progress: Progress) -> list[list[dict]]:
    from tfsconvert.convert.onnx_writer import onnx_runner

    progress("checking parity with ONNX Runtime")
    run = onnx_runner(dest / "model.onnx")
    return [[run(feeds) for feeds in checked[0].samples]]


def _written_signatures(dest: Path, target: str, signature_name: str) -> dict[str, Signature]:
    """The signatures as a server will see them, read back from the written files (the converted first)."""
    if target == "savedmodel":
        from tfsconvert.inspect.savedmodel import read_savedmodel
        written = read_savedmodel(dest, None)[0].signatures
        return {signature_name: written.pop(signature_name), **written}
    from tfsconvert.inspect import onnx_model
    return {signature_name: next(iter(onnx_model.describe(dest / "model.onnx").versions[0].signatures.values()))}


def _by_sample(per_signature: list[list[dict]]) -> list[dict]:
    """Sample i of every signature merged into one dict (every signature has the same count)."""
    return [{k: v for rows in sample for k, v in rows.items()} for sample in zip(*per_signature)]


def convert(src: Path, kind: str, target: str, options: ConvertOptions,
            progress: Progress = lambda _: None) -> ConversionResult:
    """Convert a TensorFlow source of format `kind` into a published `<base>/<version>/` for `target`."""
    _check_source(src, kind)
    inputs, outputs = parse_mapping(options.inputs, "--input"), parse_mapping(options.outputs, "--output")
    plan = pipeline.plan(src, kind, target, options, TOLERANCES[target], *_defaults(src, kind))
    _check_target(src, kind, plan.dest)
    progress(f"loading TensorFlow and {src}")
    source = load_source(src, kind, options.source_signature)
    try:
        signature = source.resolve(inputs, outputs)
        makers = {} if options.sample_inputs is not None else source.value_makers()
        samples = _samples(signature, options, makers)
        progress(f"running the source on {len(samples)} samples")
        checked = [_Checked(options.signature_name, signature, samples,
                            _run_source(source, samples, signature, options, makers), first=True)]
        if target == "savedmodel":
            checked += _kept(source, options, len(samples))
        build = _TfBuild(source, plan, options, checked)
        artifact, parity = pipeline.publish(plan, build, progress)
    finally:
        source.close()
    files = {"golden": str(artifact / GOLDEN_FILE)}
    if target == "savedmodel":
        files["warmup"] = str(artifact / WARMUP_FILE)
    else:
        files["model"] = str(artifact / "model.onnx")
    return pipeline.result(
        plan, artifact, signature_name=options.signature_name, signature=build.signatures[options.signature_name],
        signatures=build.signatures, parity=parity, samples=len(samples), files=files,
        findings=generic_findings(signature, source.source_names(), src), notes=source.notes)
