"""`tfsconvert serving-config`: TF Serving config files and command lines for checked base paths.

Each PATH goes through validate's static checks first; a layout with an error finding gets no
config. Three files are written into the output directory, each built in a temp file, read
back with TF Serving's rules (docs/tf-serving.md §6.2, §6.4) and renamed into place:

- `models.config`: `model_config_list` with the absolute host base paths (tensorflow_model_server,
  `tfsconvert serve`, `tfsconvert validate`);
- `models.docker.config`: the same models at `/models/<name>`, where the Docker command mounts them;
- `batching_parameters.txt`: batching parameters: the measured defaults or the field's rule
  (tfsconvert.serving.tuning), or with `calibrate` the best of a short sweep on this machine
  (tfsconvert.serving.calibrate), its figures in the file's comments.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from google.protobuf import text_format

from tfsconvert import tfproto
from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.model import Finding
from tfsconvert.server import hardware as hw
from tfsconvert.server.batching_config import BatchingParameters, format_batching_parameters, \
    parse_batching_parameters
from tfsconvert.serving.commands import SESSION_FLAG, command_lines, docker_base_path
from tfsconvert.serving.tuning import CALIBRATE_CONCURRENCY, CALIBRATE_SECONDS, RULES, recommend
from tfsconvert.validate.checks import ServedModel, static_check
from tfsconvert.validate.model_config import PLATFORM, read_model_config

if TYPE_CHECKING:  # the sweep's module imports the load generator and sandbox: only with --calibrate
    from tfsconvert.serving.calibrate import Calibration

FILES = {"model_config": "models.config", "docker_model_config": "models.docker.config",
         "batching_parameters": "batching_parameters.txt"}
_LABELS = {"docker": "serve with Docker (the tensorflow/serving image)",
           "tensorflow_model_server": "serve with TF Serving's binary",
           "tfsconvert_serve": "serve with tfsconvert's embedded server (also ONNX and PMML versions)"}
_HEADER = "# {what}: written by `tfsconvert serving-config` (docs/serving.md).\n"


@dataclass
class ServingConfigResult:
    """What was written (nothing when a layout has errors: see `findings`), and how to run it."""

    out: str
    hardware: hw.Hardware
    models: list[ServedModel]
    findings: list[Finding]
    batching: BatchingParameters | None = None
    session_parallelism: int = 0
    batching_from: str = ""  # calibrated | measured | field-rule
    calibration: Calibration | None = None
    files: dict[str, str] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def tf_serving_compatible(self) -> bool:
        """Every served version is a SavedModel (ONNX and PMML only serve with `tfsconvert serve`)."""
        return all(v.format == "savedmodel" for m in self.models for v in m.versions)

    def to_json(self) -> dict:
        return {"ok": self.ok, "out": self.out, "files": self.files, "hardware": self.hardware.to_json(),
                "models": [dict(m.to_json(), docker_base_path=docker_base_path(m.name)) for m in self.models],
                "tf_serving_compatible": self.tf_serving_compatible,
                "batching_parameters": self.batching.to_json() if self.batching else None,
                "session_parallelism": self.session_parallelism, "batching_from": self.batching_from or None,
                "calibration": self.calibration.to_json() if self.calibration else None,
                "commands": self.commands, "findings": [f.to_json() for f in self.findings]}

    def summary(self) -> list[str]:
        """Plain lines for people: files, models, commands (the findings are rendered apart)."""
        if not self.ok:
            return ["nothing written: TF Serving would not serve these models (errors below)"]
        hardware = self.hardware
        lines = [f"wrote {self.out}  (tuned for {hardware.cpus} CPU(s) [{hardware.cpus_source}], "
                 f"{hardware.gpus} GPU(s); batching: {self.batching_from})"]
        lines += [f"  {path}" for path in self.files.values()]
        for model in self.models:
            served = ", ".join(str(v.version) for v in model.versions) or "none yet"
            lines.append(f"  model {model.name}: {model.base_path} -> {docker_base_path(model.name)} in Docker; "
                         f"{model.policy}, serving version {served}")
        for label, command in self.commands.items():
            lines += [f"# {_LABELS[label]}", command]
        return lines


@dataclass(frozen=True)
class BatchingChoice:
    """How the batching parameters are chosen: `calibrate` (a sweep of at most `seconds`) or a tuning rule."""

    defaults: str = "measured"
    calibrate: bool = False
    seconds: float = CALIBRATE_SECONDS
    concurrency: int = CALIBRATE_CONCURRENCY
    say: Callable[[str], None] = lambda line: None


def serving_config(paths: list[Path], out: Path = Path("serving"), cpus: int | None = None, gpus: int = 0,
                   model_name: str | None = None, force: bool = False,
                   batching: BatchingChoice = BatchingChoice()) -> ServingConfigResult:
    """Check PATHS, then write the three files into `out`. InputError (exit 2) for bad options or outputs."""
    _check_options(paths, cpus, gpus, model_name)
    _check_batching(batching, cpus, gpus)
    reports = [static_check(path, model_name) for path in paths]
    for report in reports:
        if report.kind == "model-config":
            raise InputError("bad-option", f"{report.path} is a model config file already",
                             f"give the base paths it lists, or check it: tfsconvert validate {report.path}")
    models = _unique([(model, report.path) for report in reports for model in report.models])
    findings = [f for report in reports for f in report.findings] + _not_servable_by_tf_serving(models)
    result = ServingConfigResult(os.path.abspath(out), hw.detect(cpus, gpus), models, findings)
    if result.ok:
        _write(result, Path(result.out), force, batching)
    return result


def _check_options(paths: list[Path], cpus: int | None, gpus: int, model_name: str | None) -> None:
    if not paths:
        raise InputError("bad-option", "no PATH given", "tfsconvert serving-config models/mymodel [more base paths]")
    if model_name is not None and len(paths) > 1:
        raise InputError("bad-option", f"--model-name names one model, but {len(paths)} paths were given",
                         "leave --model-name out: each model is named after its base path directory")
    if (cpus is not None and cpus < 1) or gpus < 0:
        raise InputError("bad-option", f"--cpus must be at least 1 and --gpus at least 0 (got {cpus}, {gpus})",
                         "--cpus 8, or --gpus 2 for the GPU recipe")


def _check_batching(batching: BatchingChoice, cpus: int | None, gpus: int) -> None:
    if batching.defaults not in RULES:
        raise InputError("bad-option", f"--batching-defaults {batching.defaults}: {' or '.join(RULES)}",
                         "--batching-defaults measured (the default) or --batching-defaults field-rule")
    if batching.calibrate and (cpus is not None or gpus or batching.defaults != "measured"):
        raise InputError("bad-option", "--calibrate measures this machine's CPUs with the embedded server: it does "
                         "not combine with --cpus, --gpus or --batching-defaults",
                         "leave --calibrate out to write the defaults for other hardware")
    if batching.seconds <= 0 or batching.concurrency < 1:
        raise InputError("bad-option", f"--calibrate-seconds must be positive and --calibrate-concurrency at least "
                         f"1 (got {batching.seconds:g}, {batching.concurrency})", "--calibrate-seconds 60")


def _unique(models: list[tuple[ServedModel, str]]) -> list[ServedModel]:
    """The models, refusing a name given twice (TF Serving: `Illegal to list model m multiple times ...`)."""
    seen: dict[str, ServedModel] = {}
    for model, path in models:
        if model.name in seen:
            raise InputError(
                "duplicate-model-name",
                f"two models would be named '{model.name}': {seen[model.name].base_path} and {model.base_path} "
                f"(from {path}); TF Serving refuses the config: `Illegal to list model {model.name} multiple times "
                f"in config list`", "rename one base path directory, or write one config per model with "
                                    "--model-name and --out")
        seen[model.name] = model
    return list(seen.values())


def _not_servable_by_tf_serving(models: list[ServedModel]) -> list[Finding]:
    """ONNX and PMML versions: our server serves them, tensorflow_model_server cannot (docs/tf-serving.md §2.2, §7 case 8)."""
    return [finding(
        "not-a-savedmodel",
        f"version {version.version} of model '{model.name}' is {version.format.upper()}, not a SavedModel: "
        f"tensorflow_model_server and the tensorflow/serving image fail to load it, so the Docker and "
        f"tensorflow_model_server commands do not work for this config",
        "serve this config with the tfsconvert serve command, or give serving-config only SavedModel base paths "
        "for TF Serving", version.path, severity="warning",
        tf_serving=f"NOT_FOUND: Specified file path does not appear to contain a SavedModel bundle (should have a "
                   f"file called `saved_model.pb`)\nSpecified file path: {version.path}")
        for model in models for version in model.versions if version.format != "savedmodel"]


def _write(result: ServingConfigResult, out: Path, force: bool, batching: BatchingChoice) -> None:
    targets = {role: out / name for role, name in FILES.items()}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise InputError("output-exists", f"{', '.join(existing)} already exist(s)",
                         "pass --force to replace them, or --out ANOTHER_DIR")
    params, reasons, parallelism = recommend(result.hardware, batching.defaults)
    what = f"TF Serving --batching_parameters_file for {result.hardware.cpus} CPU(s), {result.hardware.gpus} GPU(s)"
    if batching.calibrate:
        result.calibration = _calibrate(result, batching)
        best = result.calibration.best.setting
        params, parallelism = best.params, best.session_parallelism
        reasons = _calibrated_reasons(result.calibration, reasons)
        intro = result.calibration.comment()
        result.batching_from = "calibrated"
    else:
        rule = "GPU" if result.hardware.gpus else batching.defaults
        intro = (f"The {rule} defaults (docs/serving.md): the reason is above each field."
                 + (f"\nStart the server with {SESSION_FLAG}={parallelism} (in the commands serving-config prints)."
                    if parallelism else "")
                 + "\nMeasure this machine with `tfsconvert serving-config PATH --calibrate`.")
        result.batching_from = rule
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError("bad-option", f"cannot create the output directory {out}: {error.strerror}",
                         "--out a writable directory") from None
    texts = {"model_config": _model_config(result.models, docker=False),
             "docker_model_config": _model_config(result.models, docker=True),
             "batching_parameters": _HEADER.format(what=what) + "".join(f"# {line}\n" for line in intro.splitlines())
             + format_batching_parameters(params, reasons)}
    temps = {role: _temp_file(out, FILES[role], text) for role, text in texts.items()}
    try:
        _verify(temps, params)
        for role, temp in temps.items():
            os.replace(temp, targets[role])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    result.batching, result.session_parallelism = params, parallelism
    result.files = {role: str(path) for role, path in targets.items()}
    result.commands = command_lines(out, FILES, {m.base_path: docker_base_path(m.name) for m in result.models},
                                    result.hardware.gpus, parallelism)


def _calibrate(result: ServingConfigResult, batching: BatchingChoice) -> Calibration:
    """The sweep on the one model's served version (a batching file is shared by every model of a server)."""
    from tfsconvert.serving.calibrate import calibrate

    served = [m for m in result.models if m.versions]
    if len(result.models) != 1 or not served:
        raise InputError("bad-option", f"--calibrate measures one model with a version to serve; got "
                         f"{len(result.models)} model(s), {len(served)} with a version",
                         "calibrate on the model that matters most: tfsconvert serving-config BASE_PATH --calibrate")
    model = served[0]
    return calibrate(Path(model.base_path), result.hardware, model.name, batching.seconds,
                                 batching.concurrency, say=batching.say)


def _calibrated_reasons(found: Calibration, reasons: dict[str, str]) -> dict[str, str]:
    """The swept fields say which values were measured; the others keep the defaults' reasons."""
    from tfsconvert.serving.calibrate import axes

    best = found.best.setting.params
    out = dict(reasons)
    for axis, _ in axes(found.hardware.cpus, found.concurrency):
        if axis == "session_parallelism":
            continue
        tried = sorted({getattr(s.params, axis) for s in found.swept()})
        out[axis] = (f"{getattr(best, axis)}: the best of {', '.join(map(str, tried))} measured (above)."
                     if len(tried) > 1 else f"{getattr(best, axis)}: the defaults' value (no other value measured "
                                            f"within the time budget).")
    sizes = ", ".join(map(str, best.allowed_batch_sizes))
    out["allowed_batch_sizes"] = f"{sizes}: powers of two up to max_batch_size, which TF Serving requires last."
    return out


def _model_config(models: list[ServedModel], docker: bool) -> str:
    """The `model_config_list` text proto; protobuf's printer does the quoting."""
    config = tfproto.message_class("ModelServerConfig")()
    for model in models:
        entry = config.model_config_list.config.add(
            name=model.name, base_path=docker_base_path(model.name) if docker else model.base_path,
            model_platform=PLATFORM)
        policy = entry.model_version_policy
        if model.policy.kind == "specific":
            policy.specific.versions.extend(model.policy.versions)
        elif model.policy.kind == "all":
            policy.all.SetInParent()
        else:
            policy.latest.num_versions = max(model.policy.num_versions, 1)
    where = "container paths for the Docker command" if docker else "absolute host paths"
    return _HEADER.format(what=f"TF Serving --model_config_file ({where})") + text_format.MessageToString(config)


def _temp_file(out: Path, name: str, text: str) -> Path:
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(temp)


def _verify(temps: dict[str, Path], params: BatchingParameters) -> None:
    """Read the files back as TF Serving would; a problem here is a bug in this module."""
    for role in ("model_config", "docker_model_config"):
        problems = read_model_config(temps[role]).findings
        if problems:
            raise RuntimeError(f"generated {FILES[role]} fails TF Serving's checks: {problems[0].message}")
    if parse_batching_parameters(temps["batching_parameters"].read_text(encoding="utf-8")) != params:
        raise RuntimeError(f"generated {FILES['batching_parameters']} does not read back as written")
