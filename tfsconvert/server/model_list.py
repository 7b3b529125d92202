"""Many versions in one server process: the model config file that lists them, and what the
server's log says about each one's load (docs/tf-serving.md §6.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

CONFIG_FILE = "models.config"  # in the staged models dir, beside the base paths (named 0, 1, ...)
# The loader harness's log lines (ours and TF Serving's): when each version started and finished loading.
_LOAD_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+): . \S+\] (Loading|Successfully loaded|Servable) "
                        r"(?:servable version )?\{name: (.*?) version: (-?\d+)\}", re.MULTILINE)


@dataclass(frozen=True)
class Served:
    """One version a sandbox serves: its model name, version number and (host) version dir."""

    model: str
    version: int
    path: Path


def model_names(servables: list[Served]) -> list[str]:
    """The models in first-seen order; a model's base path is staged as its index in this list."""
    return list(dict.fromkeys(served.model for served in servables))


def write_config(servables: list[Served], models: Path, seen_as: str) -> None:
    """The model config file in `models` (which the server sees at `seen_as`): each model with a
    `specific` version policy naming its versions."""
    from google.protobuf import text_format

    from tfsconvert import tfproto

    config = tfproto.message_class("ModelServerConfig")()
    for index, name in enumerate(model_names(servables)):
        entry = config.model_config_list.config.add(name=name, base_path=f"{seen_as}/{index}",
                                                    model_platform="tensorflow")
        entry.model_version_policy.specific.versions.extend(
            sorted(served.version for served in servables if served.model == name))
    path = models / CONFIG_FILE
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    path.chmod(0o444)


def load_steps(log: str) -> list[tuple[str, tuple[str, int], datetime]]:
    """(step, (model, version), time) of each loader line in a server log; step: Loading,
    Successfully loaded, or Servable (cannot be loaded)."""
    return [(step, (name, int(version)), datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f"))
            for stamp, step, name, version in _LOAD_LINE.findall(log)]


def load_times(log: str) -> dict[tuple[str, int], float]:
    """Seconds each version took to load (with its warmup)."""
    started, times = {}, {}
    for step, servable, at in load_steps(log):
        if step == "Loading":
            started[servable] = at
        elif step == "Successfully loaded" and servable in started:
            times[servable] = (at - started[servable]).total_seconds()
    return times


def loading(log: str) -> tuple[str, int] | None:
    """The version whose load had started but not ended when the log stops (a hang, a crash), if any."""
    steps = load_steps(log)
    return steps[-1][1] if steps and steps[-1][0] == "Loading" else None
