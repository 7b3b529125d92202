"""Static checks of `tfsconvert validate`: what TF Serving will do with a layout, from files alone.

No server and no TensorFlow: the readers of tfsconvert.inspect describe every version, and this
module adds what only a deployment view needs (docs/tf-serving.md §1–§2, §7): which versions the version
policy serves, config-file errors, warmup files, golden files and signature changes between
versions. PATH kinds (see `kind_of`): a base path, one version dir, a model repository (a
directory whose children are base paths), a `model_config_list` file, or a model file/dir that
is not a servable layout at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.golden import read_golden
from tfsconvert.inspect import base_path
from tfsconvert.inspect.detect import SAVEDMODEL_FILES, detect, holds_model
from tfsconvert.inspect.savedmodel import NO_VERSIONS, not_in_version_dir, read_savedmodel
from tfsconvert.layout import parse_version
from tfsconvert.model import Finding, Signature, VersionInfo
from tfsconvert.naming import GOLDEN_FILE
from tfsconvert.validate.model_config import ConfigEntry, VersionPolicy, looks_like_model_config, read_model_config
from tfsconvert.validate.signature_diff import breaking_changes
from tfsconvert.validate.warmup_check import check_warmup

# How a model that is not a servable layout becomes one (docs/convert.md, docs/tabular.md).
_CONVERT_COMMAND = {"frozen-graph": "saved-model", "keras": "saved-model", "tf1-checkpoint": "saved-model",
                    "sklearn": "pmml", "spark-pipeline": "pmml"}
# Children of a model repository that are not served, and why.
_NOT_IN_REPOSITORY = {"hidden": "a hidden entry", "no-model": "holds no model",
                      "model-repository": "a nested model repository (serve it on its own)"}


@dataclass
class ServedVersion:
    """A version TF Serving would load under the policy; `errors`: codes of error findings inside it."""

    version: int
    path: str
    format: str  # savedmodel | onnx | pmml
    signatures: dict[str, Signature]
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"version": self.version, "path": self.path, "format": self.format,
                "signatures": {k: v.to_json() for k, v in self.signatures.items()}, "errors": self.errors}


@dataclass
class ServedModel:
    """A model to serve: its name, absolute base path, policy and the versions served, highest first."""

    name: str
    base_path: str
    policy: VersionPolicy
    versions: list[ServedVersion] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "base_path": self.base_path, "policy": self.policy.to_json(),
                "versions": [v.to_json() for v in self.versions]}


@dataclass
class StaticReport:
    """The models to serve and every finding; `ignored`: entries that are not models, with why."""

    path: str
    kind: str  # base-path | version-dir | unversioned-model | model-repository | model-config | model-file
    models: list[ServedModel] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "models": [m.to_json() for m in self.models],
                "findings": [f.to_json() for f in self.findings], "ignored": self.ignored}


def static_check(path: Path | str, model_name: str | None = None) -> StaticReport:
    """Predict what TF Serving does with PATH. InputError (exit 2) when PATH is missing or no model.

    `model_name` overrides the served name (default: the base path's directory name); it only
    applies to a single model, not to a repository or a config file (which name their models).
    """
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise InputError("path-not-found", f"{path}: no such file or directory",
                         "validate takes a TF Serving base path, a version dir, a model repository or a "
                         "model config file")
    if path.is_file() and path.name in SAVEDMODEL_FILES:
        path = path.parent
    kind = "model-config" if path.is_file() and looks_like_model_config(path) else kind_of(path)
    if kind == "no-model":
        kind = "base-path"  # TF Serving given it as a base path finds no version (docs/tf-serving.md §1.5)
    if model_name is not None and kind in ("model-repository", "model-config"):
        raise InputError("bad-option", f"--model-name applies to one model, but {path} is a {kind}",
                         "leave --model-name out: the models keep their directory (or config) names")
    report = StaticReport(str(path), kind)
    if kind == "model-config":
        _add_config(report, path)
    elif kind == "model-repository":
        _add_repository(report, path)
    else:
        _add_one(report, path, kind, model_name)
    return report


def kind_of(path: Path) -> str:
    """What `path` is to TF Serving; `no-model` for a directory with no model in it.

    A directory with a numeric child is a base path; without one but with a child that has
    numeric children, a model repository. InputError for a file that is no model at all.
    """
    if path.is_file():
        detect(path)
        return "model-file"
    if holds_model(path):
        return "version-dir" if parse_version(path.name) is not None else "unversioned-model"
    children = list(path.iterdir())
    if any(parse_version(c.name) is not None for c in children):
        return "base-path"
    if any(c.is_dir() and any(parse_version(g.name) is not None for g in c.iterdir()) for c in children):
        return "model-repository"
    try:
        fmt = detect(path)
    except InputError:
        return "no-model"
    return "base-path" if fmt == "base-path" else "model-file"


def _add_one(report: StaticReport, path: Path, kind: str, name: str | None) -> None:
    if kind == "version-dir":  # serve only this version of its base path
        policy = VersionPolicy("specific", versions=(parse_version(path.name),))
        _add_model(report, path.parent, name or path.parent.name, policy)
    elif kind == "unversioned-model":
        _add_unversioned(report, path, name or path.name)
    elif kind == "model-file":
        report.findings.append(_model_file(path))
    else:
        _add_model(report, path, name or path.name, VersionPolicy())


def _add_repository(report: StaticReport, repo: Path) -> None:
    """Every child that is a model is served under its directory name; the rest is listed as ignored."""
    for child in sorted(repo.iterdir(), key=lambda p: p.name.encode()):
        try:
            kind = "hidden" if child.name.startswith(".") else kind_of(child)
        except InputError:
            kind = "no-model"
        if kind in _NOT_IN_REPOSITORY:
            report.ignored.append({"path": str(child), "reason": _NOT_IN_REPOSITORY[kind]})
        else:
            _add_one(report, child, kind, None)


def _add_config(report: StaticReport, path: Path) -> None:
    config = read_model_config(path)
    report.findings += config.findings
    for entry in config.entries:
        base = Path(entry.base_path)
        if entry.is_remote:
            report.ignored.append({"path": entry.base_path, "reason": "a remote URI; not checked"})
        elif not base.is_dir():
            report.findings.append(_missing_base(base, entry, path, len(config.entries)))
        else:
            _add_model(report, base, entry.name, entry.policy)


def _add_unversioned(report: StaticReport, path: Path, name: str) -> None:
    """A model directly in what would be the base path: TF Serving sees no version (docs/tf-serving.md §1.5)."""
    if base_path.version_format(path) != "savedmodel":
        _add_model(report, path, name, VersionPolicy())
        return
    _, findings = read_savedmodel(path, None)
    report.findings += [not_in_version_dir(path, name), *findings]
    report.models.append(ServedModel(name, str(path), VersionPolicy()))


def _add_model(report: StaticReport, base: Path, name: str, policy: VersionPolicy) -> None:
    """Check one base path under `policy`: inspect's findings, plus the deployment view."""
    desc = base_path.describe(base, name)
    versions = {info.version: info for info in desc.versions}
    served = policy.select(list(versions))
    findings = desc.diagnostics + _policy_findings(base, name, policy, list(versions), served)
    for number, info in versions.items():
        if number in served:
            findings += check_warmup(info) if base_path.version_format(Path(info.path)) == "savedmodel" else []
            findings += _golden_findings(info)
        else:
            findings = [_demoted(f, info, policy) if _inside(f, info) else f for f in findings]
    older = [n for n in versions if served and n < served[0]]
    if older:  # the version being rolled out against the one before it
        newest = versions[served[0]]
        findings += breaking_changes(base, newest, versions[max(older)], base_path.version_format(Path(newest.path)))
    report.findings += findings
    report.ignored += [{"path": str(base / i["name"]), "reason": i["reason"]} for i in desc.ignored]
    report.models.append(ServedModel(name, str(base), policy, [
        ServedVersion(n, versions[n].path, base_path.version_format(Path(versions[n].path)), versions[n].signatures,
                      [f.code for f in findings if f.severity == "error" and _inside(f, versions[n])])
        for n in served]))


def _inside(f: Finding, info: VersionInfo) -> bool:
    return f.path is not None and (f.path == info.path or f.path.startswith(info.path + os.sep))


def _demoted(f: Finding, info: VersionInfo, policy: VersionPolicy) -> Finding:
    """A problem of a version the policy does not serve is information (until a rollback, docs/tf-serving.md §1.7)."""
    if f.severity == "info":
        return f
    return replace(f, severity="info", message=f"version {info.version} is not served under the version policy "
                                               f"({policy}); if it were: {f.message}")


def _policy_findings(base: Path, name: str, policy: VersionPolicy, on_disk: list[int], served: list[int]) -> list:
    """`specific` versions missing on disk (docs/tf-serving.md §1.4, §7 case 30)."""
    findings = [finding(
        "no-version-directory", f"version {v} of {name} is requested by its version policy but {base / str(v)} "
                                f"does not exist",
        f"publish it: tfsconvert saved-model MODEL --base-path {base} --version {v}, or drop it from the policy",
        base, severity="warning", tf_serving=f"Version {v} of servable {name}, which was requested to be served as a "
                                             f"'specific' version in the servable's version policy, was not found "
                                             f"in the file system")
        for v in policy.versions if v not in on_disk]
    if on_disk and not served:
        findings.append(finding(
            "no-version-directory", f"none of the versions the policy ({policy}) asks for exists under {base}; "
                                    f"TF Serving never becomes ready",
            f"list versions that exist ({', '.join(map(str, sorted(on_disk)))}) in the policy", base,
            tf_serving=NO_VERSIONS.format(name=name, base=base)))
    return findings


def _golden_findings(info: VersionInfo) -> list[Finding]:
    """A malformed golden file: TF Serving never reads it, but validate cannot replay it."""
    path = Path(info.path) / GOLDEN_FILE
    if not path.is_file():
        return []
    try:
        read_golden(path)
    except InputError as error:
        return [finding("bad-golden-file", f"{error.message}; validate cannot replay these golden requests",
                        error.hint, path, tf_serving="ignores it: TF Serving reads only tf_serving_warmup_requests "
                                                     "in assets.extra (docs/tf-serving.md §2.1)")]
    return []


def _missing_base(base: Path, entry: ConfigEntry, config: Path, models: int) -> Finding:
    """§1.2 step 1 and §7 cases 1 and 26: the poll errors, and aborts for every model."""
    problem = "is a file, not a directory" if base.exists() else "does not exist"
    error = (f"Could not find base path {base} for servable {entry.name} with error NOT_FOUND: {base} not found"
             if not base.exists() else f"cannot list {base}: it is a file")
    tf_serving = f"FileSystemStoragePathSource encountered a filesystem access error: {error}"
    others = f"; the poll aborts on this error, so no other model of {config} loads either" if models > 1 else ""
    return finding(
        "base-path-not-found",
        f"base path {base} of model '{entry.name}' {problem}; TF Serving logs `{tf_serving}` every second and "
        f"never opens its ports{others}",
        f"publish the model there: tfsconvert saved-model MODEL --base-path {base} --version 1, or fix its "
        f"base_path in {config}", base, tf_serving=tf_serving)


def _model_file(path: Path) -> Finding:
    """A model where a base path must be (a frozen .pb, a Keras file, ...): convert it first."""
    fmt = detect(path)
    if fmt in _CONVERT_COMMAND:
        hint = f"tfsconvert {_CONVERT_COMMAND[fmt]} {path} --version 1"
    else:  # onnx, pmml: already a servable file for tfsconvert's server, but needs a version dir
        hint = f"mkdir -p models/{path.stem}/1 && cp {path} models/{path.stem}/1/model.{fmt}"
    tf_serving = ("FileSystemStoragePathSource encountered a filesystem access error: … (a file cannot be listed "
                  "as a base path)" if path.is_file() else NO_VERSIONS.format(name=path.name, base=path))
    return finding("not-a-savedmodel",
                   f"{path} is a {fmt} model, not a TF Serving base path (<base>/<N>/saved_model.pb); "
                   f"TF Serving never loads a version from it", hint, path, tf_serving=tf_serving)
