"""`tfsconvert pmml` and `tfsconvert onnx` for scikit-learn and Spark ML sources: what is theirs in the pipeline.

The steps are tfsconvert.convert.pipeline's; here: load the source, make or read sample rows and run
the source on them, write the target and evaluate it as the embedded server does (tfsconvert.runtimes:
PMML with JPMML-Evaluator and/or pypmml, ONNX with ONNX Runtime), and pick the golden rows. What
differs between the families (loading, the target's writer and evaluators) is a `_Job`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

from tfsconvert.convert import pipeline, tabular, tabular_parity
from tfsconvert.convert.options import DEFAULT_OPSET, ConvertOptions
from tfsconvert.convert.result import ConversionResult, Progress
from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.model import Signature
from tfsconvert.naming import DEFAULT_SIGNATURE, GOLDEN_FILE, is_generic

# (atol, rtol) per target: PMML evaluates in double like scikit-learn; skl2onnx's converters compute
# in float32 (tree ensembles only exist in float), so regression values need a relative tolerance.
TOLERANCES = {"pmml": (1e-6, 1e-6), "onnx": (1e-6, 1e-5)}
MODEL_FILES = {"pmml": "model.pmml", "onnx": "model.onnx"}
DEFAULT_TARGET_NAME = "y"
EVALUATOR_NAMES = {"jpmml": "JPMML-Evaluator", "pypmml": "pypmml", "onnxruntime": "ONNX Runtime"}


def _check_source(src: Path, kind: str, target: str) -> None:
    if kind in ("sklearn", "spark-pipeline"):
        return
    raise InputError("unsupported-format", f"{src} is a {kind} model, not a scikit-learn pickle or a Spark ML "
                     "PipelineModel",
                     f"tfsconvert {target} converts a fitted scikit-learn estimator or Pipeline saved with "
                     "joblib.dump or pickle (.joblib, .pkl, .pickle), or a Spark PipelineModel directory"
                     + ("; TensorFlow models go to `tfsconvert saved-model` or `tfsconvert onnx`"
                        if target == "pmml" else ""))


def _target_name(options: ConvertOptions) -> str:
    name = DEFAULT_TARGET_NAME if options.target_name is None else options.target_name.strip()
    if not name:
        raise InputError("bad-option", "--target-name is empty", "name the predicted field, e.g. --target-name species")
    return name


def _findings(source, src: Path, names_given: bool, target: str, target_name: str) -> list:
    """Generic names the artifact will show clients (the same ones `inspect` flags in it)."""
    found = []
    generic = [f.name for f in source.features if is_generic(f.name)]
    if generic:
        origin = "--feature-names" if names_given else "the model's feature_names_in_"
        found.append(finding("unnamed-signature-io", f"input field(s) {', '.join(generic)} (from {origin}) look "
                             "like default names; clients will not know what to send",
                             "pass meaningful names: --feature-names " + ",".join(
                                 f"<{f.name}>" if f.name in generic else f.name for f in source.features), src))
    # A PMML regressor has no Output element, so its predicted field is the target field itself.
    if target == "pmml" and source.task == "regressor" and is_generic(target_name):
        found.append(finding("unnamed-signature-io", f"the PMML's predicted field is called '{target_name}'",
                             "name what the model predicts: --target-name <name>, e.g. --target-name price", src))
    return found


@dataclass
class _Job:
    """What differs between source families and targets; the steps around it are shared."""

    source: Any  # SklearnSource or SparkSource
    rows: list[dict]
    signature: Callable[[], Signature]  # called once the model is written (it may carry fewer fields)
    converting: str  # progress line while the target is written
    write: Callable[[Path], list[str]]  # writes the model file, returns notes
    evaluate: Callable[[Path], dict[str, list[dict]]]  # evaluator -> the written model's answers for `rows`
    notes: list[str]
    findings: list
    evaluators: tuple[str, ...] = ("onnxruntime",)


@dataclass
class _TabularBuild:
    """pipeline.Build for a scikit-learn or Spark source: the job's writer and evaluators, then golden rows."""

    job: _Job
    plan: pipeline.Plan
    expected: list[dict]  # the source's answers for job.rows
    allow_flips: float
    notes: list[str] = field(default_factory=list)
    golden_rows: list[int] = field(default_factory=list)
    served: list[dict] = field(default_factory=list)  # the source's answers in the fields the target serves

    def write(self, dest: Path, progress: Progress) -> None:
        progress(self.job.converting)
        self.notes = self.job.write(dest / MODEL_FILES[self.plan.target])

    def parity(self, dest: Path, progress: Progress) -> list:
        job, plan, model_file = self.job, self.plan, dest / MODEL_FILES[self.plan.target]
        fields = job.source.output_dtypes()  # the writer may have found fewer fields than the source has
        self.served = [{name: answer[name] for name in fields} for answer in self.expected]
        progress(f"checking parity with {' and '.join(EVALUATOR_NAMES.get(e, e) for e in job.evaluators)}")
        answers = job.evaluate(model_file)
        first, *others = job.evaluators  # the first evaluator is the gate; PMML's second one gives an opinion
        parity = tabular_parity.check(
            self.served, answers[first], plan.atol, plan.rtol, self.allow_flips,
            what=f"the {plan.target.upper()} model" + (f" ({EVALUATOR_NAMES[first]})" if others else ""),
            hint=_HINTS[plan.target])
        differing = set(parity.differing)
        if others:
            from tfsconvert.convert.pmml_writer import second_opinion

            found, notes = second_opinion(self.served, answers, job.rows, plan.atol, plan.rtol, model_file.name)
            job.findings.extend(found)
            self.notes += notes
            # `validate` replays the golden file through each engine: rows the second one misses are left out
            differing |= tabular_parity.compare_rows(self.served, answers[others[0]], plan.atol, plan.rtol).differing
        self.golden_rows = tabular.golden_rows(job.rows, parity.worst, differing)
        return parity.outputs

    def golden(self, dest: Path) -> list:
        return tabular.golden_records(self.job.rows, self.served, self.golden_rows, self.job.source.features,
                                      self.job.source.output_dtypes(), DEFAULT_SIGNATURE, self.plan.atol,
                                      self.plan.rtol)

    def warmup(self, dest: Path) -> list[bytes]:
        return []  # TF Serving warms up SavedModels only


def convert(src: Path, kind: str, target: str, options: ConvertOptions,
            progress: Progress = lambda _: None) -> ConversionResult:
    """Convert a scikit-learn or Spark ML source of format `kind` into a published `<base>/<version>/` holding
    model.pmml or model.onnx."""
    _check_source(src, kind, target)
    if kind == "sklearn":  # (dispatch refused the options of the other family)
        feature_names = tabular.parse_feature_names(options.feature_names)
        target_name = _target_name(options)
    plan = pipeline.plan(src, kind, target, options, TOLERANCES[target], src.name.split(".")[0] or "model")
    count = tabular.sample_count(options.samples)
    allow_flips = tabular_parity.check_allow_flips(options.allow_flips)
    if kind == "sklearn":
        job = _sklearn_job(src, target, options, feature_names, target_name, count, progress)
    else:
        job = _spark_job(src, target, options, count, progress)
    progress(f"running the source on {len(job.rows)} rows")
    build = _TabularBuild(job, plan, _predict(job.source, job.rows, options.sample_data), allow_flips)
    artifact, parity = pipeline.publish(plan, build, progress)
    advice = [] if options.sample_data is not None else [
        f"parity used only synthesized rows ({len(job.rows)}, at the model's split thresholds and categories); "
        "check rows like the ones it will serve with --sample-data FILE (CSV or Parquet)"]
    return pipeline.result(
        plan, artifact, signature_name=DEFAULT_SIGNATURE, signature=job.signature(), parity=parity,
        samples=len(job.rows), parity_rows="synthesized" if options.sample_data is None else "sample-data",
        files={"model": str(artifact / MODEL_FILES[target]), "golden": str(artifact / GOLDEN_FILE)},
        findings=job.findings, notes=[*job.notes, *build.notes, *advice])


_HINTS = {
    "pmml": "check the rows with --sample-data (values at a split threshold can flip a tree), accept a share of "
            "flipped labels with --allow-flips RATE, or other differences with --atol/--rtol",
    "onnx": "ONNX tree ensembles compare float32 values, so rows within float32 rounding of a split threshold can "
            "take the other branch: check real rows with --sample-data, accept a share of flipped labels with "
            "--allow-flips RATE, or other differences with --atol/--rtol",
}


def _predict(source, rows: list[dict], sample_data: Path | None) -> list[dict]:
    """The source's answers; a blank the model cannot take is named by its row and column."""
    try:
        return source.predict(rows)
    except InputError as error:
        blank = next(((i, name) for i, row in enumerate(rows) for name, value in row.items() if value is None), None)
        if error.code != "predict-failed" or blank is None or sample_data is None:
            raise
        raise InputError("bad-sample-data", f"--sample-data {sample_data}: row {blank[0] + 1}, column '{blank[1]}' "
                         f"is blank, and the model cannot take a missing value ({error.message})",
                         "fill or drop the rows with blanks, or fit the pipeline with an imputer for that column"
                         ) from None


def _rows_from(options: ConvertOptions, rows: list, synthesized_from: str) -> str:
    return (f"the first {len(rows)} rows of {options.sample_data}" if options.sample_data is not None
            else f"{len(rows)} rows synthesized from {synthesized_from} (seed {tabular.SEED})")


def _sklearn_job(src: Path, target: str, options: ConvertOptions, feature_names, target_name: str,
                 count: int | None, progress: Progress) -> _Job:
    opset = DEFAULT_OPSET if options.opset is None else options.opset
    if target == "pmml":
        from tfsconvert.convert import pmml_writer as writer
        progress("checking Java, sklearn2pmml and the PMML evaluators")
        writer.preflight(evaluator=options.pmml_evaluator)
    else:
        from tfsconvert.convert import sklearn_onnx as writer
        writer.preflight(opset)

    progress(f"loading scikit-learn and {src}")
    from tfsconvert.convert import sklearn_source

    source = sklearn_source.load(src, feature_names, options.trust_pickle)
    if target_name in {f.name for f in source.features}:
        raise InputError("bad-option", f"--target-name {target_name} is also the name of an input feature",
                         "choose another name for the predicted field, e.g. --target-name prediction")
    rows = tabular.sample_rows(source.features, options.sample_data, count)
    origin = "--feature-names" if feature_names is not None and not source.named else "feature_names_in_"
    notes = [f"{source.class_name} ({source.task}); feature names from {origin}; parity rows: "
             f"{_rows_from(options, rows, 'the model')}"]
    findings = _findings(source, src, feature_names is not None, target, target_name)
    signature = partial(writer.served_signature, source, target_name)
    if target == "pmml":
        def write(model_file: Path) -> list[str]:
            writer.write_pmml(source, model_file, target_name)
            return []

        return _Job(source, rows, signature, "converting to PMML with sklearn2pmml (starting Java)", write,
                    _pmml_evaluate(lambda path, engine: writer.pmml_outputs(source.features, path, rows, engine),
                                   options), notes, findings, _engines(options))
    return _Job(source, rows, signature, f"converting to ONNX with skl2onnx (opset {opset})",
                lambda model_file: writer.write_onnx(source, model_file, opset, target_name),
                lambda model_file: {"onnxruntime": writer.onnx_outputs(source, model_file, rows)}, notes, findings)


def _spark_job(src: Path, target: str, options: ConvertOptions, count: int | None, progress: Progress) -> _Job:
    from tfsconvert.convert import sklearn_onnx, spark_session, spark_source

    progress("checking Java, Spark and " + ("pyspark2pmml" if target == "pmml" else "onnxmltools"))
    spark_session.preflight(target)
    if target == "pmml":
        from tfsconvert.runtimes.pmml import check_installed

        for engine in _engines(options):
            check_installed(engine)
    if target == "onnx":
        from tfsconvert.convert import spark_onnx

        opset = spark_onnx.preflight(options.opset)
    plan = spark_source.prepare(src, options.schema, options.sample_data, count)
    if target == "onnx":
        spark_onnx.check_stages(plan)  # before the ~20 s Spark start
    source, rows = spark_source.load(plan, count, options.spark_master, progress)
    notes = [f"{source.class_name} ({source.task}); schema from {plan.schema_from}; parity rows: "
             f"{_rows_from(options, rows, 'the schema and the fitted stages')}"]
    generic = [f.name for f in source.features if is_generic(f.name)]
    findings = [finding("unnamed-signature-io", f"input field(s) {', '.join(generic)} look like default names; "
                        "clients will not know what to send", "rename the DataFrame columns before fitting "
                        "(df.withColumnRenamed('x1', 'sepal_length')) and save the pipeline again", src)
                ] if generic else []
    if target == "pmml":
        from tfsconvert.convert import spark_pmml

        return _Job(source, rows, partial(spark_pmml.served_signature, source), "converting to PMML with pyspark2pmml",
                    lambda model_file: spark_pmml.write_pmml(source, model_file),
                    _pmml_evaluate(lambda path, engine: spark_pmml.pmml_outputs(source, path, rows, engine),
                                   options), notes, findings, _engines(options))
    return _Job(source, rows, partial(sklearn_onnx.served_signature, source, ""),
                f"converting to ONNX with onnxmltools (opset {opset})",
                lambda model_file: spark_onnx.write_onnx(source, model_file, opset),
                lambda model_file: {"onnxruntime": sklearn_onnx.onnx_outputs(source, model_file, rows)}, notes,
                findings)


def _engines(options: ConvertOptions) -> tuple[str, ...]:
    from tfsconvert.runtimes.pmml import engines

    return engines(options.pmml_evaluator)


def _pmml_evaluate(outputs: Callable[[Path, str], list[dict]], options: ConvertOptions):
    """The job's evaluate for PMML: the answers of each chosen engine (tfsconvert.runtimes.pmml)."""
    return lambda model_file: {engine: outputs(model_file, engine) for engine in _engines(options)}
