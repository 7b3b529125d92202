"""Which models to serve: single-model flags or a text `ModelServerConfig` file (docs/tf-serving.md §1.1, §6.2).

Only what start-up needs is validated here, with TF Serving's messages (as declared in tfsconvert.tfproto);
richer static checks of a config file live in `tfsconvert.validate.model_config`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tfsconvert import tfproto
from tfsconvert.server import logs
from tfsconvert.server.status import ServingError, invalid

PLATFORM = "tensorflow"  # the only platform the binary registers (docs/tf-serving.md §2.1)


@dataclass
class VersionPolicy:
    """`latest {num_versions}` (the default, 1), `all {}` or `specific {versions}` (docs/tf-serving.md §1.4)."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()


@dataclass
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)


def single_model(name: str, base_path: str) -> list[ModelConfig]:
    """`--model_name/--model_base_path` mode (server.cc BuildSingleModelConfig)."""
    logs.info("model_servers/server.cc:90", f"Building single TensorFlow model file config:  "
              f"model_name: {name} model_base_path: {base_path}")
    return _validated([ModelConfig(name, base_path)])


def read_file(path: str) -> list[ModelConfig]:
    """Parse a text ModelServerConfig; ServingError with TF Serving's start-up message if it is bad."""
    try:
        config = tfproto.parse_text("ModelServerConfig", Path(path).read_text(encoding="utf-8"), strict=True)
    except (OSError, UnicodeDecodeError, tfproto.ParseError) as error:
        detail = str(error).replace(f"{tfproto.PACKAGE}.", "tensorflow.serving.")  # TF Serving's message names
        sys.stderr.write(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {detail}\n")
        raise invalid(f"Invalid protobuf file: '{path}'") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ServingError("UNIMPLEMENTED", "ModelServer does not yet support custom model config.")
    models = []
    for entry in config.model_config_list.config:
        if not entry.model_platform:
            raise invalid("Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                          f"ModelServerConfig::model_platform, model name is {entry.name}")
        if entry.model_platform != PLATFORM:
            raise invalid(f"Model {entry.name} requests unsupported platform {entry.model_platform}")
        models.append(ModelConfig(entry.name, entry.base_path, _policy(entry.model_version_policy),
                                  dict(entry.version_labels)))
    return _validated(models)


def _policy(proto) -> VersionPolicy:
    kind = proto.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy("all")
    if kind == "specific":
        return VersionPolicy("specific", versions=tuple(proto.specific.versions))
    if kind == "latest":
        return VersionPolicy("latest", num_versions=max(proto.latest.num_versions, 1))
    return VersionPolicy()


def _validated(models: list[ModelConfig]) -> list[ModelConfig]:
    """server_core.cc ValidateModelConfigList: unique names, absolute base paths or URIs."""
    seen = set()
    for model in models:
        if model.name in seen:
            raise invalid(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if not (model.base_path.startswith("/") or "://" in model.base_path):
            raise invalid(f"Expected model {model.name} to have an absolute path or URI; "
                          f"got base_path()={model.base_path}")
    return models


def check_labels(models: list[ModelConfig], allow_unavailable: bool) -> None:
    """Labels in the initial config fail start-up (docs/tf-serving.md §6.3): nothing is available yet."""
    if allow_unavailable:
        return
    for model in models:
        for version in model.labels.values():
            raise ServingError("FAILED_PRECONDITION", f"Request to assign label to version {version} of model "
                               f"{model.name}, which is not currently available for inference")
