"""TF Serving's `--model_config_file` (a `model_config_list` text proto) and version policies.

Parsed with the messages declared in tfsconvert.tfproto, so TensorFlow is never imported. The
checks are those `ServerCore` makes before loading anything (docs/tf-serving.md §6.2, §6.3, §7 cases 20–25):
each one makes the real server exit at startup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

from tfsconvert import tfproto
from tfsconvert.findings import finding
from tfsconvert.model import Finding

PLATFORM = "tensorflow"  # the only platform the binary registers (docs/tf-serving.md §2.1)
_CONFIG_SUFFIXES = (".config", ".conf")
_MARKER = re.compile(rb"^\s*model_config_list\b", re.MULTILINE)
_MODEL_TYPES = {1: "tensorflow", 2: "other"}  # deprecated ModelConfig.model_type


@dataclass(frozen=True)
class VersionPolicy:
    """`model_version_policy`: latest {num_versions} (the default, 1), all {}, or specific {versions}."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions TF Serving aspires among `available`, highest first (docs/tf-serving.md §1.4)."""
        ranked = sorted(set(available), reverse=True)
        if self.kind == "all":
            return ranked
        if self.kind == "specific":
            return [v for v in ranked if v in self.versions]
        return ranked[:max(self.num_versions, 1)]  # latest {} and num_versions: 0 both mean 1

    def to_json(self) -> dict:
        if self.kind == "latest":
            return {"kind": "latest", "num_versions": max(self.num_versions, 1)}
        if self.kind == "specific":
            return {"kind": "specific", "versions": list(self.versions)}
        return {"kind": "all"}

    def __str__(self) -> str:
        if self.kind == "specific":
            return "specific {" + " ".join(f"versions: {v}" for v in self.versions) + "}"
        return f"latest {{num_versions: {max(self.num_versions, 1)}}}" if self.kind == "latest" else "all {}"


@dataclass
class ConfigEntry:
    """One `config { ... }` whose base path can be checked on disk (absolute path or URI)."""

    name: str
    base_path: str
    policy: VersionPolicy

    @property
    def is_remote(self) -> bool:
        """A URI (`gs://...`): its files cannot be checked here."""
        return _is_uri(self.base_path)


@dataclass
class ModelConfigFile:
    """What a config file asks TF Serving to serve, and what TF Serving rejects in it."""

    path: Path
    entries: list[ConfigEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def looks_like_model_config(path: Path) -> bool:
    """A `.config`/`.conf` file, or any file with a top-level `model_config_list` line."""
    if path.suffix in _CONFIG_SUFFIXES:
        return True
    with path.open("rb") as f:
        return bool(_MARKER.search(f.read(65536)))


def read_model_config(path: Path) -> ModelConfigFile:
    """Parse a config file and run TF Serving's startup checks on every entry."""
    result = ModelConfigFile(path)
    try:
        config = tfproto.parse_text("ModelServerConfig", path.read_text(encoding="utf-8"), strict=True)
    except (tfproto.ParseError, UnicodeDecodeError) as error:
        result.findings.append(_unparsable(path, error))
        return result
    if config.HasField("custom_model_config"):
        result.findings.append(_bad(path, "sets custom_model_config",
                                    "ModelServer does not yet support custom model config.",
                                    "replace it with model_config_list { config { ... } }"))
    seen: set[str] = set()
    for model in config.model_config_list.config:
        result.findings += _entry_problems(path, model, seen)
        if model.name not in seen and (model.base_path.startswith("/") or _is_uri(model.base_path)):
            result.entries.append(ConfigEntry(model.name, model.base_path, _policy(model)))
        seen.add(model.name)
    return result


def _is_uri(base_path: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", base_path))


def _policy(model: Message) -> VersionPolicy:
    policy = model.model_version_policy
    if policy.HasField("all"):
        return VersionPolicy("all")
    if policy.HasField("specific"):
        return VersionPolicy("specific", versions=tuple(policy.specific.versions))
    return VersionPolicy("latest", num_versions=policy.latest.num_versions)


def _entry_problems(path: Path, model: Message, seen: set[str]) -> list[Finding]:
    """Every startup check of server_core.cc for one entry (TF Serving stops at the first)."""
    name, problems = model.name, []
    if name in seen:
        problems.append(_bad(path, f"lists model '{name}' twice",
                             f"Illegal to list model {name} multiple times in config list",
                             f"give each config a unique name (the second '{name}' is the one to rename)"))
    if model.model_platform and model.model_type:
        problems.append(_bad(path, f"sets both model_type and model_platform for model '{name}'",
                             "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                             "ModelServerConfig::model_platform.", "delete the model_type line"))
    platform = model.model_platform or _MODEL_TYPES.get(model.model_type)
    if platform is None:
        problems.append(_bad(path, f"model '{name}' has no model_platform",
                             f"INVALID_ARGUMENT: Illegal setting neither ModelServerConfig::model_type (deprecated) "
                             f"nor ModelServerConfig::model_platform, model name is {name}",
                             f'add model_platform: "{PLATFORM}" to the config of {name}'))
    elif platform != PLATFORM:
        problems.append(_bad(path, f"model '{name}' asks for platform '{platform}'",
                             f"Model {name} requests unsupported platform {platform}",
                             f'set model_platform: "{PLATFORM}" (TF Serving serves SavedModels only)'))
    if not (model.base_path.startswith("/") or _is_uri(model.base_path)):
        problems.append(_bad(path, f"model '{name}' has a relative base_path '{model.base_path}'",
                             f"Expected model {name} to have an absolute path or URI; got "
                             f"base_path()={model.base_path}",
                             f'base_path: "{_absolute(path, model.base_path)}"  (absolute, without the version '
                             f'directory)'))
    if model.model_version_policy.HasField("specific") and not model.model_version_policy.specific.versions:
        problems.append(_bad(path, f"model '{name}' has an empty specific version list",
                             f"No specific versions requested for servable {name}.",
                             "list the versions: specific { versions: 1 }, or use latest {}"))
    for label, version in sorted(model.version_labels.items()):
        problems.append(_bad(path, f"model '{name}' assigns label '{label}' in the initial config",
                             f"FAILED_PRECONDITION: Request to assign label to version {version} of model {name}, "
                             f"which is not currently available for inference",
                             "start without version_labels and add them by a config reload once the versions are "
                             "AVAILABLE, or start tensorflow_model_server with "
                             "--allow_version_labels_for_unavailable_models"))
    return problems


def _absolute(config: Path, base_path: str) -> Path:
    """Where a relative base path most likely points: the existing one of cwd/it, config dir/it."""
    candidates = [Path.cwd() / base_path, config.parent / base_path]
    return next((p for p in candidates if p.is_dir()), candidates[0]).resolve()


def _bad(path: Path, what: str, tf_serving: str, hint: str) -> Finding:
    return finding("bad-model-config", f"{path} {what}; TF Serving exits at startup: `{tf_serving}`", hint, path,
                   tf_serving=tf_serving)


def _unparsable(path: Path, error: Exception) -> Finding:
    # Our messages live in package tfsconvert.tf; TF Serving names its own.
    detail = str(error).replace("tfsconvert.tf.", "tensorflow.serving.")
    tf_serving = f"INVALID_ARGUMENT: Invalid protobuf file: '{path}'"
    return finding(
        "bad-model-config",
        f"{path} is not a valid text-format ModelServerConfig ({detail}); TF Serving prints `Error parsing "
        f"text-format tensorflow.serving.ModelServerConfig: …` and exits: `{tf_serving}`",
        "fix the syntax at the line:column given (format: model_config_list { config { name: \"m\" "
        "base_path: \"/models/m\" model_platform: \"tensorflow\" } })", path, tf_serving=tf_serving)
