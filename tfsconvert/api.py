"""The Python API, for use right after training (docs/api.md): the CLI's commands as functions.

Each returns the result object the command's `--json` output is made of (`.to_dict()` is that
document), raises a TfsConvertError subclass (tfsconvert/errors.py) where the command exits non-zero
with an error, and prints nothing. A source is a path, or a model in memory: it is first saved into
a temporary directory with its framework's own saver (Keras `.keras`, `tf.saved_model.save`, joblib
for scikit-learn, `PipelineModel.save` for Spark) and converted from there, so the parity reference
is that saved file run by its own framework, as for the CLI. Heavy libraries load only when a
function runs; an optional package that is not installed raises EnvironmentProblem with the
`pip install 'tfsconvert[...]'` line, as the CLI exits 3 with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from tfsconvert.errors import InputError, optional_packages_named
from tfsconvert.naming import DEFAULT_SIGNATURE

if TYPE_CHECKING:
    from tfsconvert.convert.result import ConversionResult
    from tfsconvert.model import ModelDescription
    from tfsconvert.validate.report import ValidationReport

PathLike = Union[str, Path]
Names = Union[Mapping[str, str], Sequence[str], None]  # {"alias": "tensor"} or ["alias=tensor", ...]

__all__ = ["inspect", "onnx", "pmml", "saved_model", "validate"]


@optional_packages_named()
def saved_model(source: Any, base_path: PathLike, *, version: int | str | None = None, name: str | None = None,
                inputs: Names = None, outputs: Names = None, signature_name: str = DEFAULT_SIGNATURE,
                source_signature: str | None = None, samples: int | None = None,
                sample_inputs: PathLike | None = None, atol: float | None = None, rtol: float | None = None,
                force: bool = False) -> ConversionResult:
    """`tfsconvert saved-model`: a TensorFlow source (a path, or an in-memory `keras.Model` or
    `tf.Module`) into version `version` (default: the next free) of the SavedModel base path."""
    with _source_file(source) as (src, _):
        return _convert(source, src, "savedmodel", base_path, version=version, name=name,
                        inputs=_pairs(inputs), outputs=_pairs(outputs), signature_name=signature_name,
                        source_signature=source_signature, samples=samples, sample_inputs=_path(sample_inputs),
                        atol=atol, rtol=rtol, force=force)


@optional_packages_named()
def onnx(source: Any, base_path: PathLike, *, version: int | str | None = None, name: str | None = None,
         inputs: Names = None, outputs: Names = None, opset: int | None = None, source_signature: str | None = None,
         samples: int | None = None, sample_inputs: PathLike | None = None, sample_data: Any = None,
         feature_names: Sequence[str] | str | None = None, target_name: str | None = None,
         atol: float | None = None, rtol: float | None = None, allow_flips: float | None = None, force: bool = False,
         trust_pickle: bool = False, schema: Mapping[str, str] | str | None = None,
         spark_master: str | None = None) -> ConversionResult:
    """`tfsconvert onnx`: a TensorFlow, scikit-learn or Spark ML source (a path or an in-memory model)
    into `model.onnx` in version `version` of the base path. `sample_data` may be a path or a pandas
    DataFrame."""
    with _source_file(source) as (src, trusted), _sample_data(sample_data) as data:
        return _convert(source, src, "onnx", base_path, version=version, name=name, inputs=_pairs(inputs),
                        outputs=_pairs(outputs), opset=opset, source_signature=source_signature, samples=samples,
                        sample_inputs=_path(sample_inputs), sample_data=data,
                        feature_names=_names(feature_names), target_name=target_name, atol=atol, rtol=rtol,
                        allow_flips=allow_flips, force=force, trust_pickle=trust_pickle or trusted,
                        schema=_schema(schema), spark_master=spark_master)


@optional_packages_named()
def pmml(source: Any, base_path: PathLike, *, version: int | str | None = None, name: str | None = None,
         sample_data: Any = None, feature_names: Sequence[str] | str | None = None, target_name: str | None = None,
         samples: int | None = None, atol: float | None = None, rtol: float | None = None,
         allow_flips: float | None = None, force: bool = False, trust_pickle: bool = False,
         schema: Mapping[str, str] | str | None = None, spark_master: str | None = None,
         pmml_evaluator: str = "both") -> ConversionResult:
    """`tfsconvert pmml`: a scikit-learn estimator or Pipeline, or a Spark ML PipelineModel (a path or
    in memory) into `model.pmml` in version `version` of the base path (Java 17+)."""
    if pmml_evaluator not in ("jpmml", "pypmml", "both"):
        raise InputError("bad-option", f"pmml_evaluator={pmml_evaluator!r} is not one of jpmml, pypmml, both",
                         "use pmml_evaluator='both'")
    with _source_file(source) as (src, trusted), _sample_data(sample_data) as data:
        return _convert(source, src, "pmml", base_path, version=version, name=name, sample_data=data,
                        feature_names=_names(feature_names), target_name=target_name, samples=samples, atol=atol,
                        rtol=rtol, allow_flips=allow_flips, force=force, trust_pickle=trust_pickle or trusted,
                        schema=_schema(schema), spark_master=spark_master, pmml_evaluator=pmml_evaluator)


@optional_packages_named()
def inspect(path: PathLike, *, trust_pickle: bool = False) -> ModelDescription:
    """`tfsconvert inspect`: what the artifact at `path` is, its signatures and its findings."""
    from tfsconvert.inspect import inspect_path

    return inspect_path(Path(path), trust_pickle=trust_pickle)


@optional_packages_named()
def validate(path: PathLike, *, golden: PathLike | None = None, model_name: str | None = None,
             rtol: float | None = None, atol: float | None = None, static_only: bool = False,
             protocol: str = "both", timeout: float = 60.0, request_timeout: float | None = None,
             strict: bool = False, memory_mb: int = 8192, cpu_seconds: int = 600, require_isolation: bool = False,
             pmml_evaluator: str = "both", jobs: int | None = None,
             server_per_version: bool = False) -> ValidationReport:
    """`tfsconvert validate` with the embedded server: the report (`.ok` is False where the command
    exits 1; the findings say why)."""
    from tfsconvert.server.sandbox import Limits
    from tfsconvert.validate.runner import ValidateOptions, validate as run_validation

    if pmml_evaluator not in ("jpmml", "pypmml", "both"):
        raise InputError("bad-option", f"pmml_evaluator={pmml_evaluator!r} is not one of jpmml, pypmml, both",
                         "use pmml_evaluator='both'")
    options = ValidateOptions(_path(golden), model_name, rtol, atol, static_only, protocol, timeout=timeout,
                              strict=strict, limits=Limits(memory_mb, cpu_seconds),
                              require_isolation=require_isolation, request_timeout=request_timeout,
                              pmml_evaluator=pmml_evaluator, server_per_version=server_per_version,
                              **({} if jobs is None else {"jobs": jobs}))
    return run_validation(Path(path), options)


# ---------------------------------------------------------------------------------------------


def _convert(source: Any, src: Path, target: str, base_path: PathLike, **given) -> ConversionResult:
    """Run the conversion pipeline (tfsconvert.convert.dispatch) as the CLI does, with ConvertOptions."""
    from tfsconvert.convert.dispatch import convert
    from tfsconvert.convert.options import ConvertOptions

    version, name = given.pop("version"), given.pop("name")
    options = ConvertOptions(**given, base_path=Path(base_path), name=name or Path(base_path).name,
                             version=None if version is None else str(version))
    result = convert(src, target, options)
    if not isinstance(source, (str, Path)):  # the temporary file is gone: say what it was
        result = dataclasses.replace(result, source=f"<in-memory {type(source).__module__}.{type(source).__name__}>")
    return result


def _framework(model: Any) -> str | None:
    """Which saver an in-memory model needs: keras, tensorflow, spark or sklearn (None: not a model)."""
    modules = [cls.__module__ for cls in type(model).__mro__]
    roots = {module.split(".")[0] for module in modules}
    if roots & {"keras", "tf_keras"} or any(".keras" in module for module in modules):
        return "keras"
    for framework in ("tensorflow", "pyspark", "sklearn"):
        if framework in roots:
            return {"pyspark": "spark"}.get(framework, framework)
    return None


@contextlib.contextmanager
def _source_file(source: Any) -> Iterator[tuple[Path, bool]]:
    """(path, trusted pickle): a path as given, or an in-memory model saved by its framework into a
    temporary directory that is removed afterwards (a scikit-learn model's pickle is trusted: it is the
    caller's own object)."""
    if isinstance(source, (str, Path)):
        yield Path(source), False
        return
    framework = _framework(source)
    if framework is None:
        raise InputError("unsupported-format", f"{type(source).__name__} is neither a path nor a model tfsconvert "
                         "converts", "pass a path, a keras.Model, a tf.Module, a fitted scikit-learn estimator or "
                         "a Spark ML PipelineModel")
    with tempfile.TemporaryDirectory(prefix="tfsconvert-api-") as folder:
        yield _save(source, framework, Path(folder)), framework == "sklearn"


def _save(model: Any, framework: str, folder: Path) -> Path:
    try:
        if framework == "keras":
            path = folder / "model.keras"
            model.save(path)
        elif framework == "tensorflow":
            import tensorflow as tf

            path = folder / "saved_model"
            tf.saved_model.save(model, str(path))
        elif framework == "sklearn":
            import joblib

            path = folder / "model.joblib"
            joblib.dump(model, path)
        else:
            path = folder / "pipeline"
            model.write().overwrite().save(str(path))
    except Exception as error:  # noqa: BLE001 - the framework's own saver refused the model
        raise InputError("unsupported-format", f"the in-memory {type(model).__name__} cannot be saved by "
                         f"{framework}: {type(error).__name__}: {error}",
                         "save it yourself and pass the path") from error
    return path


@contextlib.contextmanager
def _sample_data(data: Any) -> Iterator[Path | None]:
    """A --sample-data path, or a pandas DataFrame written as CSV into a temporary directory."""
    if data is None or isinstance(data, (str, Path)):
        yield _path(data)
        return
    if not hasattr(data, "to_csv"):
        raise InputError("bad-option", f"sample_data is a {type(data).__name__}",
                         "pass a CSV or Parquet path, or a pandas DataFrame (one column per feature)")
    with tempfile.TemporaryDirectory(prefix="tfsconvert-api-") as folder:
        path = Path(folder) / "sample_data.csv"
        data.to_csv(path, index=False)
        yield path


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def _pairs(names: Names) -> tuple[str, ...]:
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    if isinstance(names, Mapping):
        return tuple(f"{alias}={tensor}" for alias, tensor in names.items())
    return tuple(names)


def _names(names: Sequence[str] | str | None) -> str | None:
    return names if names is None or isinstance(names, str) else ",".join(names)


def _schema(schema: Mapping[str, str] | str | None) -> str | None:
    import json

    return schema if schema is None or isinstance(schema, str) else json.dumps(dict(schema))
