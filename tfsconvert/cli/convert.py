"""The converters: `saved-model`, `onnx` and `pmml`."""

from __future__ import annotations

from pathlib import Path

import typer

from tfsconvert.naming import DEFAULT_SIGNATURE
from tfsconvert.cli.app import JSON, QUIET, app, pmml_evaluator_choice, run

# Options shared by the converters (one definition, so the commands cannot drift apart).
_SRC = typer.Argument(..., help="A frozen .pb/.pbtxt, Keras .keras/.h5, TF1 checkpoint prefix or .meta, "
                                "or a SavedModel directory.")
_ONNX_SRC = typer.Argument(..., help="A frozen .pb/.pbtxt, Keras .keras/.h5, TF1 checkpoint prefix or .meta, "
                                     "a SavedModel directory, a scikit-learn pickle/joblib file, or a Spark ML "
                                     "PipelineModel directory.")
_PMML_SRC = typer.Argument(..., help="A fitted scikit-learn estimator or Pipeline saved with joblib or pickle, or "
                                     "a Spark ML PipelineModel directory.")
_VERSION = typer.Option(None, "--version", help="Version number to publish (positive integer); default: next free.")
_BASE = typer.Option(None, "--base-path", help="TF Serving model base path; default: ./models/<name>.")
_NAME = typer.Option(None, "--model-name", "--name", help="Model name (warmup model_spec, default base path); "
                                                          "default: source stem.")
_INPUTS = typer.Option(None, "--input", help="ALIAS=TENSOR: name a signature input (repeatable). "
                                            "For a SavedModel source, NEW=OLD renames an input.")
_OUTPUTS = typer.Option(None, "--output", help="ALIAS=TENSOR: name a signature output (repeatable); "
                                              "the outputs are exactly those given.")
_SIGNATURE = typer.Option(DEFAULT_SIGNATURE, "--signature-name", help="Signature key to write.")
_SOURCE_SIGNATURE = typer.Option(None, "--source-signature",
                                 help="SavedModel source: the signature to convert (default serving_default).")
_SAMPLES = typer.Option(None, "--samples", help="Synthesize N sample inputs for parity (default 256); the first 8 "
                                              "become golden requests and warmup records.")
_SAMPLE_INPUTS = typer.Option(None, "--sample-inputs", help="Sample inputs from a JSON or .npz file instead.")
_ATOL = typer.Option(None, "--atol", help="Parity: absolute tolerance for float outputs.")
_RTOL = typer.Option(None, "--rtol", help="Parity: relative tolerance for float outputs.")
_FORCE = typer.Option(False, "--force", help="Replace an existing version (atomically).")
# scikit-learn and Spark sources (pmml, and onnx when SRC is a pickle or a Spark directory).
_ROWS = typer.Option(None, "--samples", help="Rows for parity (default: at least 1,024 synthesized at the model's "
                                            "split thresholds and categories; with --sample-data, its first N rows, "
                                            "default all).")
_ALLOW_FLIPS = typer.Option(None, "--allow-flips", help="scikit-learn and Spark sources: the share of parity rows "
                                                       "whose label may differ from the source's (default 0: a "
                                                       "flipped label fails the conversion).")
_ONNX_SAMPLES = typer.Option(None, "--samples", help="Synthesize N sample inputs for parity (default 256, the first "
                                                    "8 golden; scikit-learn and Spark sources: at least 1,024 "
                                                    "rows).")
_SAMPLE_DATA = typer.Option(None, "--sample-data", help="scikit-learn and Spark sources: rows from a CSV or "
                                                       "Parquet file (one column per feature) instead of "
                                                       "synthesized ones; for Spark also the schema.")
_FEATURE_NAMES = typer.Option(None, "--feature-names", help="scikit-learn sources fitted on a plain array: the "
                                                           "feature names in column order, a,b,c.")
_TARGET_NAME = typer.Option(None, "--target-name", help="scikit-learn sources: the predicted field's name in the "
                                                       "PMML (default y); ONNX outputs are always label, "
                                                       "probabilities or prediction.")
_TRUST_PICKLE = typer.Option(False, "--trust-pickle", help="Allow the pickle to load classes outside "
                                                          "scikit-learn/numpy/scipy/pandas (this runs its code).")
# Spark ML sources.
_SCHEMA = typer.Option(None, "--schema", help="Spark sources: the input columns' types as JSON, inline or a file, "
                                             "e.g. '{\"a\": \"double\", \"color\": \"string\"}' (or "
                                             "--sample-data).")
_SPARK_MASTER = typer.Option(None, "--spark-master", help="Spark sources: the Spark master URL to use "
                                                         "(default: a local session, local[*]).")
_PMML_EVALUATOR = typer.Option("both", "--pmml-evaluator", help="Parity: evaluate the PMML with jpmml "
                                                                "(JPMML-Evaluator), pypmml, or both (default; a "
                                                                "disagreement between them is a finding).")


def _convert(src: Path, target: str, as_json: bool, quiet: bool, **given) -> None:
    """Run the conversion of `src` with the command's options (tfsconvert.convert.options.ConvertOptions)."""
    from tfsconvert import output
    from tfsconvert.convert.dispatch import convert
    from tfsconvert.convert.options import ConvertOptions

    options = ConvertOptions(**{**given, "inputs": tuple(given.get("inputs") or ()),
                                "outputs": tuple(given.get("outputs") or ())})

    output.set_quiet(quiet)
    with output.status(f"converting {src} to {target}") as progress:
        result = run(lambda: convert(src, target, options, progress), as_json)
    if as_json:
        output.print_json(result.to_json())
    else:
        output.render_conversion(result)


@app.command("saved-model")
def saved_model(src: Path = _SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
                inputs: list[str] = _INPUTS, outputs: list[str] = _OUTPUTS, signature_name: str = _SIGNATURE,
                source_signature: str = _SOURCE_SIGNATURE, samples: int = _SAMPLES,
                sample_inputs: Path = _SAMPLE_INPUTS, atol: float = _ATOL, rtol: float = _RTOL,
                force: bool = _FORCE, as_json: bool = JSON, quiet: bool = QUIET) -> None:
    """Convert a TensorFlow model into a versioned SavedModel with explicit names, parity-checked."""
    _convert(src, "savedmodel", as_json, quiet, version=version, base_path=base_path, name=name, inputs=inputs,
             outputs=outputs, signature_name=signature_name, source_signature=source_signature, samples=samples,
             sample_inputs=sample_inputs, atol=atol, rtol=rtol, force=force)


@app.command("onnx")
def onnx(src: Path = _ONNX_SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
         inputs: list[str] = _INPUTS, outputs: list[str] = _OUTPUTS,
         opset: int = typer.Option(None, "--opset", help="ONNX opset to target (default 17; Spark sources: the "
                                                         "newest onnxmltools supports, 15)."),
         source_signature: str = _SOURCE_SIGNATURE, samples: int = _ONNX_SAMPLES,
         sample_inputs: Path = _SAMPLE_INPUTS, sample_data: Path = _SAMPLE_DATA, feature_names: str = _FEATURE_NAMES,
         target_name: str = _TARGET_NAME, atol: float = _ATOL, rtol: float = _RTOL,
         allow_flips: float = _ALLOW_FLIPS, force: bool = _FORCE, as_json: bool = JSON, quiet: bool = QUIET,
         trust_pickle: bool = _TRUST_PICKLE, schema: str = _SCHEMA, spark_master: str = _SPARK_MASTER) -> None:
    """Convert a TensorFlow, scikit-learn or Spark ML model into a versioned model.onnx with explicit names,
    parity-checked."""
    _convert(src, "onnx", as_json, quiet, version=version, base_path=base_path, name=name, inputs=inputs,
             outputs=outputs, opset=opset, source_signature=source_signature, samples=samples,
             sample_inputs=sample_inputs, sample_data=sample_data, feature_names=feature_names,
             target_name=target_name, atol=atol, rtol=rtol, allow_flips=allow_flips, force=force,
             trust_pickle=trust_pickle, schema=schema, spark_master=spark_master)


@app.command("pmml")
def pmml(src: Path = _PMML_SRC, version: str = _VERSION, base_path: Path = _BASE, name: str = _NAME,
         sample_data: Path = _SAMPLE_DATA, feature_names: str = _FEATURE_NAMES, target_name: str = _TARGET_NAME,
         samples: int = _ROWS, atol: float = _ATOL, rtol: float = _RTOL, allow_flips: float = _ALLOW_FLIPS,
         force: bool = _FORCE,
         as_json: bool = JSON, quiet: bool = QUIET, trust_pickle: bool = _TRUST_PICKLE, schema: str = _SCHEMA,
         spark_master: str = _SPARK_MASTER, pmml_evaluator: str = _PMML_EVALUATOR) -> None:
    """Convert a scikit-learn or Spark ML model into a versioned model.pmml (sklearn2pmml or pyspark2pmml,
    Java 17+), parity-checked."""
    evaluator = run(lambda: pmml_evaluator_choice(pmml_evaluator, "both"), as_json)
    _convert(src, "pmml", as_json, quiet, version=version, base_path=base_path, name=name, sample_data=sample_data,
             feature_names=feature_names, target_name=target_name, samples=samples, atol=atol, rtol=rtol,
             allow_flips=allow_flips, force=force, trust_pickle=trust_pickle, schema=schema, spark_master=spark_master,
             pmml_evaluator=evaluator)
