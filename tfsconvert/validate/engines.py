"""The runtimes a served version needs on our server, checked installed before a server is started for
nothing, and the finding when the two PMML engines answer golden requests differently."""

from __future__ import annotations

from tfsconvert.errors import missing_dependency
from tfsconvert.findings import finding
from tfsconvert.model import Finding
from tfsconvert.server.sandbox import EMBEDDED
from tfsconvert.validate.replay import GoldenResult
from tfsconvert.validate.report import VersionReport

# The package our server loads each format with, and the extra that installs it (PMML: runtimes.pmml, per engine).
_RUNTIMES = {"onnx": ("onnxruntime", "onnx"), "savedmodel": ("tensorflow", "tensorflow")}


def for_version(fmt: str, server: str, pmml_evaluator: str) -> tuple[str | None, ...]:
    """The PMML engines a PMML version is served with on our server (each checked installed); (None,) otherwise,
    once the package our server loads that format with is checked installed (else exit 3 with its extra)."""
    if server != EMBEDDED:
        return (None,)
    if fmt != "pmml":
        _check_runtime(fmt)
        return (None,)
    from tfsconvert.runtimes.pmml import check_installed

    picked = chosen(pmml_evaluator)
    for engine in picked:
        check_installed(engine)
    return picked


def chosen(pmml_evaluator: str) -> tuple[str, ...]:
    """The engines `--pmml-evaluator` names, the serving default first."""
    from tfsconvert.runtimes.pmml import engines

    return engines(pmml_evaluator)


def _check_runtime(kind: str) -> None:
    """`missing-dependency` (exit 3, `pip install 'tfsconvert[extra]'`) before a server is started for nothing."""
    import importlib.util

    if kind in _RUNTIMES and importlib.util.find_spec(_RUNTIMES[kind][0]) is None:
        raise missing_dependency(*_RUNTIMES[kind])


def disagreement(version: VersionReport) -> list[Finding]:
    """`pmml-evaluators-disagree` (a warning: the first engine's misses are errors already) naming the golden
    requests, and outputs, one engine answers right and the other wrong."""
    by_request: dict[tuple, dict[str, GoldenResult]] = {}
    for result in version.golden:
        by_request.setdefault((result.id, result.protocol), {})[result.engine] = result
    split = {key: runs for key, runs in by_request.items() if len({r.ok for r in runs.values()}) > 1}
    if not split:
        return []
    shown = "; ".join(f"{request} ({protocol}): " + ", ".join(
        f"{engine} {'ok' if r.ok else 'differs in ' + ', '.join(d.alias for d in r.outputs if not d.ok)}"
        for engine, r in runs.items()) for (request, protocol), runs in list(split.items())[:5])
    return [finding("pmml-evaluators-disagree", f"{version.name}: JPMML-Evaluator and pypmml disagree on "
                    f"{len(split)} golden request(s): {shown}",
                    "serve with the engine that matches the golden answers (tfsconvert serve --pmml-evaluator), "
                    "and check the model on the engine your production server embeds", version.path)]
