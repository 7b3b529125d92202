"""Which converter handles a source: scikit-learn pickles and Spark ML PipelineModels go to
tabular_convert, TensorFlow formats to tf_convert. The source is detected once, here; options meant
for the other family are refused, not silently ignored."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.options import SKLEARN_ONLY, SPARK_ONLY, TABULAR_ONLY, TF_ONLY, ConvertOptions
from tfsconvert.convert.result import ConversionResult, Progress
from tfsconvert.errors import InputError
from tfsconvert.inspect.detect import detect

TABULAR_FORMATS = ("sklearn", "spark-pipeline")


def _refuse_options(options: ConvertOptions, unwanted: dict[str, str], kind: str) -> None:
    given = options.given(unwanted)
    if given:
        raise InputError("bad-option", f"{', '.join(given)} cannot be used with {kind}",
                         f"leave out {', '.join(given)}")


def source_kind(src: Path, target: str) -> str:
    """`detect(src)`, with a directory that holds no model explained for what `target` converts."""
    try:
        return detect(src)
    except InputError as error:
        if target == "savedmodel" or not src.is_dir() or error.code not in ("empty-directory", "unsupported-format"):
            raise
        why = "it is empty" if error.code == "empty-directory" else "it has no metadata/ directory"
        what = "a Spark ML PipelineModel" if target == "pmml" else "a SavedModel or Spark ML PipelineModel"
        raise InputError("unsupported-format", f"{src} is not {what} directory: {why}",
                         "pass the directory written by pipelineModel.write().save(path) (metadata/ and stages/)"
                         + (", a SavedModel directory" if target == "onnx" else "") + " or a model file") from None


def convert(src: Path, target: str, options: ConvertOptions, progress: Progress = lambda _: None) -> ConversionResult:
    """Convert `src` into a published `<base>/<version>/` for `target` (savedmodel, onnx or pmml)."""
    kind = source_kind(src, target)
    if target == "pmml" or (target == "onnx" and kind in TABULAR_FORMATS):
        from tfsconvert.convert import tabular_convert

        family = "a Spark ML source" if kind == "spark-pipeline" else "a scikit-learn source"
        _refuse_options(options, TF_ONLY, family)
        if kind == "spark-pipeline":
            _refuse_options(options, SKLEARN_ONLY, f"{family} (Spark pipelines name their own columns)")
        elif kind == "sklearn":
            _refuse_options(options, SPARK_ONLY, f"{family} (they are for Spark ML pipelines)")
        return tabular_convert.convert(src, kind, target, options, progress)
    from tfsconvert.convert import tf_convert

    _refuse_options(options, TABULAR_ONLY,
                    "a TensorFlow source (they are for scikit-learn pickles and Spark ML pipelines)")
    return tf_convert.convert(src, kind, target, options, progress)
