"""scikit-learn -> PMML through sklearn2pmml (the JPMML-SkLearn JVM application), its pre-flight
checks, and the parity evaluation of the result through tfsconvert.runtimes.pmml (JPMML-Evaluator
and/or pypmml, the same code the embedded server runs).

sklearn2pmml reports every failure as one RuntimeError and prints the Java log on stdout; we
capture that log and turn the JPMML messages users hit into one-line errors (the log itself is
only shown with --debug).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from tfsconvert.convert.sklearn_source import LABEL, PREDICTION, SklearnSource, unsupported_estimator
from tfsconvert.errors import EnvironmentProblem, InputError, missing_dependency
from tfsconvert.model import Signature, TensorSpec
from tfsconvert.quiet import DEBUG_ENV

MIN_JAVA = 17
# sklearn2pmml version -> the newest scikit-learn its bundled JPMML-SkLearn accepts (JPMML checks the
# `_sklearn_version` of every pickled step and refuses newer ones). A version missing here is not
# judged up front; JPMML's own "Scikit-Learn version 'X' is not supported" is still translated.
SKLEARN_SUPPORT = {
    "0.133.1": "1.9.0",  # docs/architecture.md "Supported versions": accepts 1.9.0, rejects 1.9.1
}

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')
_SKEW = re.compile(r"Scikit-Learn version '?([^'\s]+)'? is not supported")
_SKEW_SUPPORTED = re.compile(r"downgrade Scikit-Learn to version '?([^'\s]+?)'?\s*$", re.MULTILINE)
_NOT_SUPPORTED = re.compile(r"\(Python class ([\w.]+)\) is not a supported (\w+)")
_EXCEPTION = re.compile(r"^([\w.$]+(?:Exception|Error)): (.+)$", re.MULTILINE)
_PMML_TYPES = {"DT_DOUBLE": "double", "DT_STRING": "string", "DT_INT64": "integer", "DT_BOOL": "boolean"}


# ---------------------------------------------------------------------------------------------
# Pre-flight


def java_major(version_text: str) -> int | None:
    """The major version in `java -version` output (`1.8.0_392` -> 8, `17.0.15` -> 17), else None."""
    match = _JAVA_VERSION.search(version_text)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java(java: str = "java", users: str = "sklearn2pmml and pypmml") -> int:
    """The Java major version on PATH; EnvironmentProblem if Java is missing or older than 17.

    `users` names what needs Java in the message ("Spark and pypmml" for a Spark source)."""
    hint = "install Java 17 or newer and put it first on PATH: sudo apt-get install default-jre-headless"
    executable = shutil.which(java)
    if executable is None:
        raise EnvironmentProblem("java-missing", f"Java not found on PATH; {users} need Java "
                                 f"{MIN_JAVA} or newer", hint)
    try:
        proc = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EnvironmentProblem("java-missing", f"{executable} -version failed: {error}", hint) from None
    major = java_major(proc.stderr + proc.stdout)
    if major is None or major < MIN_JAVA:
        found = "an unknown version" if major is None else f"Java {major}"
        raise EnvironmentProblem("java-too-old", f"{executable} is {found}; {users} need Java "
                                 f"{MIN_JAVA} or newer", hint)
    return major


def release(version: str) -> tuple[int, ...]:
    """`4.2.1` -> (4, 2, 1); also for versions `packaging` cannot parse."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def version_skew(sklearn_version: str, supported: str, sklearn2pmml_version: str) -> EnvironmentProblem:
    """The one-line error naming both versions and the two ways out."""
    return EnvironmentProblem(
        "sklearn-version-unsupported",
        f"scikit-learn {sklearn_version} is newer than sklearn2pmml {sklearn2pmml_version} supports "
        f"(up to scikit-learn {supported})",
        f"pip install 'scikit-learn=={supported}', or pip install --upgrade sklearn2pmml "
        f"(a newer release supports newer scikit-learn)")


def check_sklearn_version(sklearn_version: str, sklearn2pmml_version: str,
                          table: dict[str, str] | None = None) -> None:
    """EnvironmentProblem when `table` says sklearn2pmml cannot read models of this scikit-learn."""
    table = SKLEARN_SUPPORT if table is None else table
    supported = table.get(sklearn2pmml_version)
    if supported is not None and release(sklearn_version) > release(supported):
        raise version_skew(sklearn_version, supported, sklearn2pmml_version)


def installed(package: str, module: str, extra: str = "sklearn") -> str:
    """The installed version of `package`; `missing-dependency` (pip install 'tfsconvert[extra]') if absent."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise missing_dependency(module, extra) from None


def preflight(table: dict[str, str] | None = None, evaluator: str = "both") -> None:
    """Before anything loads: the Python packages (the chosen PMML evaluators too), Java 17+, and
    scikit-learn within sklearn2pmml's range."""
    from tfsconvert.runtimes import pmml

    versions = {package: installed(package, module) for package, module in
                (("sklearn2pmml", "sklearn2pmml"), ("scikit-learn", "sklearn"))}
    for engine in pmml.engines(evaluator):
        pmml.check_installed(engine)
    check_java()
    check_sklearn_version(versions["scikit-learn"], versions["sklearn2pmml"], table)


# ---------------------------------------------------------------------------------------------
# Conversion


def served_signature(source: SklearnSource, target_name: str) -> Signature:
    """Fields a client sends and gets (docs/tabular.md), with the PMML field each comes from."""
    inputs = {f.name: TensorSpec(f.dtype, [-1], f.name, _PMML_TYPES[f.dtype]) for f in source.features}
    outputs = {}
    for name, dtype in source.output_dtypes().items():
        pmml_field = target_name if name in (LABEL, PREDICTION) else name
        outputs[name] = TensorSpec(dtype, [-1], pmml_field, _PMML_TYPES.get(dtype))
    return Signature(None, inputs, outputs)


def _pmml_pipeline(source: SklearnSource, target_name: str | None):
    from sklearn2pmml.pipeline import PMMLPipeline

    model = source.model
    if isinstance(model, PMMLPipeline):
        pipeline = model
    else:
        steps = model.steps if hasattr(model, "steps") else [("estimator", model)]
        pipeline = PMMLPipeline(list(steps))
    pipeline.active_fields = np.asarray([f.name for f in source.features])
    if target_name is not None or getattr(pipeline, "target_fields", None) is None:
        pipeline.target_fields = np.asarray([target_name or "y"])
    return pipeline


def write_pmml(source: SklearnSource, dest: Path, target_name: str) -> None:
    """Write `dest` with sklearn2pmml; one-line InputError/EnvironmentProblem for what JPMML refuses."""
    try:
        from sklearn2pmml import __version__ as sklearn2pmml_version
        from sklearn2pmml import sklearn2pmml
    except ImportError as error:
        raise missing_dependency(error.name or "sklearn2pmml", "sklearn") from None
    pipeline = _pmml_pipeline(source, target_name)
    log = io.StringIO()  # sklearn2pmml prints the Java log and a banner on stdout
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Its temp pickle goes to the system temp dir, never next to the user's source.
            sklearn2pmml(pipeline, str(dest))
    except (RuntimeError, TypeError) as error:
        text = log.getvalue()
        if os.environ.get(DEBUG_ENV):
            sys.stderr.write(text)
        raise jpmml_error(text or str(error), source, sklearn2pmml_version) from None
    if not dest.is_file():
        raise InputError("pmml-conversion-failed", f"sklearn2pmml wrote no PMML for {source.path}",
                         "re-run with --debug to see the JPMML log")


def jpmml_error(log: str, source: SklearnSource, sklearn2pmml_version: str):
    """The one-line error for a failed JPMML-SkLearn run, from its log (never the stack trace)."""
    skew = _SKEW.search(log)
    if skew:
        supported = _SKEW_SUPPORTED.search(log)
        return version_skew(skew.group(1), supported.group(1) if supported else "an older release",
                            sklearn2pmml_version)
    unsupported = _NOT_SUPPORTED.search(log)
    if unsupported:
        converter = f"JPMML-SkLearn (sklearn2pmml {sklearn2pmml_version}) has no converter for"
        return unsupported_estimator(source, unsupported.group(1), converter, "pmml")
    exception = _EXCEPTION.search(log)
    detail = exception.group(2).strip() if exception else (log.strip().splitlines() or ["no log"])[-1]
    return InputError("pmml-conversion-failed", f"sklearn2pmml could not convert {source.path}: {detail}",
                      "re-run with --debug to see the JPMML log")


# ---------------------------------------------------------------------------------------------
# Evaluation (tfsconvert.runtimes.pmml, the server's evaluator too)


def pmml_outputs(features: list, path: Path, rows: list[dict], engine: str) -> list[dict[str, np.ndarray]]:
    """The PMML's answer for every row through `engine`, as response fields (one-element arrays per row)."""
    from tfsconvert.runtimes import per_row
    from tfsconvert.runtimes.pmml import evaluate

    return per_row(evaluate(path, engine, {f.name: [row[f.name] for row in rows] for f in features}), len(rows))


def second_opinion(expected: list[dict], answers: dict[str, list[dict]], rows: list[dict], atol: float,
                   rtol: float, path) -> tuple[list, list[str]]:
    """(findings, notes) of the second PMML engine: how far it is from the source, and a
    `pmml-evaluators-disagree` warning naming the rows and outputs where it differs from the first engine."""
    from tfsconvert.compare import compare, merge
    from tfsconvert.findings import finding

    (first, a), (second, b) = answers.items()
    diffs = merge([compare(e, x, atol, rtol) for e, x in zip(expected, b)])
    worst = max((d.max_abs or 0.0 for d in diffs), default=0.0)
    notes = [f"{second} vs the source: max abs {worst:.3g}" + ("" if all(d.ok for d in diffs) else
                                                                " (outside the tolerances)")]
    bad = [(i, [d for d in compare(x, y, atol, rtol) if not d.ok]) for i, (x, y) in enumerate(zip(a, b))]
    bad = [(i, found) for i, found in bad if found]
    if not bad:
        return [], notes
    outputs = sorted({d.alias for _, found in bad for d in found})
    shown = "; ".join(f"row {i} {rows[i]}: " + ", ".join(
        f"{d.alias} {first} {_shown(a[i], d.alias)} vs {second} {_shown(b[i], d.alias)}" for d in found)
        for i, found in bad[:3])
    return [finding("pmml-evaluators-disagree",
                    f"{first} and {second} disagree on {len(bad)} of {len(rows)} rows ({', '.join(outputs)}): {shown}",
                    f"serve with the evaluator that matches the source ({first}: tfsconvert serve --pmml-evaluator "
                    f"{first}), and check the model on the evaluator your production server embeds", path)], notes


def _shown(answer: dict, field: str):
    value = answer.get(field)
    return None if value is None else np.asarray(value).reshape(-1).tolist()[0]  # str labels too
