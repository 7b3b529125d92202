"""Which converter handles a source: scikit-learn pickles and Spark ML PipelineModels go to
tabular_convert, TensorFlow formats to tf_convert. Options meant for the other family are refused,
not silently ignored."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.result import ConversionResult, Progress
from tfsconvert.errors import InputError
from tfsconvert.inspect.detect import detect

# Options that only one family of sources takes (option name -> default), to refuse the others clearly.
_TF_ONLY = {"inputs": ("--input", ()), "outputs": ("--output", ()), "source_signature": ("--source-signature", None),
            "sample_inputs": ("--sample-inputs", None)}
_SKLEARN_ONLY = {"feature_names": ("--feature-names", None), "target_name": ("--target-name", None),
                 "trust_pickle": ("--trust-pickle", False)}
_SPARK_ONLY = {"schema": ("--schema", None), "spark_master": ("--spark-master", None)}
_TABULAR_ONLY = {"sample_data": ("--sample-data", None), "allow_flips": ("--allow-flips", None), **_SKLEARN_ONLY,
                 **_SPARK_ONLY}
TABULAR_FORMATS = ("sklearn", "spark-pipeline")


def _refuse_options(options: dict, unwanted: dict, kind: str) -> None:
    given = [flag for key, (flag, default) in unwanted.items()
             if (value := options.pop(key, default)) is not None and value != default and value != []]
    if given:
        raise InputError("bad-option", f"{', '.join(given)} cannot be used with {kind}",
                         f"leave out {', '.join(given)}")


def source_kind(src: Path, target: str) -> str:
    """`detect(src)`, with a directory that holds no model explained for what `target` converts."""
    try:
        return detect(src)
    except InputError as error:
        if not src.is_dir() or error.code not in ("empty-directory", "unsupported-format"):
            raise
        why = "it is empty" if error.code == "empty-directory" else "it has no metadata/ directory"
        what = "a Spark ML PipelineModel" if target == "pmml" else "a SavedModel or Spark ML PipelineModel"
        raise InputError("unsupported-format", f"{src} is not {what} directory: {why}",
                         "pass the directory written by pipelineModel.write().save(path) (metadata/ and stages/)"
                         + (", a SavedModel directory" if target == "onnx" else "") + " or a model file") from None


def convert(src: Path, target: str, options: dict, progress: Progress) -> ConversionResult:
    """Run the converter for `src`'s family; `options` are the command's keyword options."""
    kind = source_kind(src, target) if target in ("pmml", "onnx") else None
    if target == "pmml" or kind in TABULAR_FORMATS:
        from tfsconvert.convert import tabular_convert

        family = "a Spark ML source" if kind == "spark-pipeline" else "a scikit-learn source"
        _refuse_options(options, _TF_ONLY, family)
        if kind == "spark-pipeline":
            _refuse_options(options, _SKLEARN_ONLY, f"{family} (Spark pipelines name their own columns)")
        elif kind == "sklearn":
            _refuse_options(options, _SPARK_ONLY, f"{family} (they are for Spark ML pipelines)")
        return tabular_convert.convert(src, target, tabular_convert.TabularOptions(**options), progress)
    from tfsconvert.convert import tf_convert

    if options.get("opset", 0) is None:
        del options["opset"]  # tf_convert's default
    _refuse_options(options, _TABULAR_ONLY,
                    "a TensorFlow source (they are for scikit-learn pickles and Spark ML pipelines)")
    options["inputs"], options["outputs"] = tuple(options["inputs"] or ()), tuple(options["outputs"] or ())
    return tf_convert.convert(src, target, tf_convert.ConvertOptions(**options), progress)
