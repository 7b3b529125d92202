"""Loading versions and finding them for requests: the parts of TF Serving's ServerCore and
AspiredVersionsManager a harness can observe (docs/tf-serving.md §0, §1, §2.5, §4.3).

Start-up blocks until every model has a finished version (AVAILABLE or END). Versions load one
at a time, highest first, so "the first version to finish" is always the highest aspired one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tfsconvert.server import discovery, logs
from tfsconvert.server.backends import Servable
from tfsconvert.server.config import ModelConfig
from tfsconvert.server.status import ServingError, invalid

_HARNESS = "core/loader_harness.cc"
Loader = Callable[[Path], Servable]


def servable_id(name: str, version: int) -> str:
    """ServableId::DebugString()."""
    return f"{{name: {name} version: {version}}}"


@dataclass
class VersionState:
    """One version's state as GetModelStatus reports it; `error` is set when it ended in error."""

    state: str = "START"
    error: ServingError | None = None
    servable: Servable | None = None


class Manager:
    """Versions of every configured model, loaded with TF Serving's retry policy."""

    def __init__(self, models: list[ModelConfig], loader: Loader, max_retries: int, retry_interval: float,
                 stop: threading.Event) -> None:
        self.models = {model.name: model for model in models}
        self.versions: dict[str, dict[int, VersionState]] = {model.name: {} for model in models}
        self._loader = loader
        self._max_retries = max(max_retries, 0)
        self._retry_interval = retry_interval
        self._stop = stop

    # -----------------------------------------------------------------------------------------
    # Start-up

    def start(self, poll_wait: int) -> list[tuple[str, int, ServingError]]:
        """Poll and load until every model has a finished version; the (model, version, error) of
        each model whose first finished version failed. Returns early (empty) when stopped."""
        failures: list[tuple[str, int, ServingError]] = []
        waiting = set(self.models)
        while waiting and not self._stop.is_set():
            aspired = self._poll(waiting)
            for name, versions in (aspired or {}).items():
                if not versions:
                    continue
                waiting.discard(name)
                for version in sorted(versions, reverse=True):
                    if self._stop.is_set():
                        return []
                    self._load(name, version, versions[version])
                first = self.versions[name][max(versions)]
                if first.error is not None:
                    failures.append((name, max(versions), first.error))
            # 0 polls once, a negative value never polls again: both wait until stopped (docs/tf-serving.md §1.6).
            if waiting and self._stop.wait(poll_wait if poll_wait > 0 else None):
                break
        return failures

    def _poll(self, names: set[str]) -> dict[str, dict[int, Path]] | None:
        """One poll; None if any base path fails, since the poll aborts before emitting anything
        for any model (docs/tf-serving.md §1.2 step 1)."""
        try:
            return {name: discovery.aspired_versions(self.models[name]) for name in sorted(names)}
        except ServingError:
            return None

    def _load(self, name: str, version: int, path: Path) -> None:
        """Load one version with retries (docs/tf-serving.md §2.5); it ends AVAILABLE or END with an error."""
        sid = servable_id(name, version)
        state = self.versions[name].setdefault(version, VersionState())
        logs.info("core/basic_manager.cc:740", f"Approving load for servable version {sid}")
        state.state = "LOADING"
        logs.info(_HARNESS + ":74", f"Loading servable version {sid}")
        for attempt in range(self._max_retries + 1):
            if attempt:
                if self._stop.wait(self._retry_interval):
                    break
                logs.info("util/retrier.cc:46", f"Retrying of Loading servable: {sid} retry: {attempt}")
            try:
                state.servable = self._loader(path)
            except ServingError as error:
                state.error = error
            except Exception as error:  # noqa: BLE001 - a runtime failing in a way we do not map is still a failed load
                state.error = ServingError("UNKNOWN", f"{type(error).__name__}: {error}")
            else:
                state.error = None
                state.state = "AVAILABLE"
                logs.info(_HARNESS + ":103", f"Successfully loaded servable version {sid}")
                return
            logs.error("util/retrier.cc:40", f"Loading servable: {sid} failed: {state.error}")
        logs.info("util/retrier.cc:53", f"Retrying of Loading servable: {sid} exhausted max_num_retries: "
                  f"{self._max_retries}")
        logs.error(_HARNESS + ":144", f"Servable {sid} cannot be loaded: {state.error}")
        state.state = "END"

    # -----------------------------------------------------------------------------------------
    # Requests

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> tuple[int, Servable]:
        """(version, servable) for a request: latest AVAILABLE, a specific version, or a label."""
        if label is not None:
            model = self.models.get(name)
            if model is None or label not in model.labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = model.labels[label]
        states = self.versions.get(name, {})
        if version is None:
            available = [v for v, s in states.items() if s.state == "AVAILABLE"]
            if not available:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            version = max(available)
        state = states.get(version)
        if state is None or state.state != "AVAILABLE":
            raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return version, state.servable

    def status(self, name: str, version: int | None = None) -> list[tuple[int, VersionState]]:
        """Every tracked version, highest first, or the one asked for (docs/tf-serving.md §4.3)."""
        states = self.versions.get(name, {})
        if version is not None:  # checked first: an unknown version of an unknown model is a version error
            if version not in states:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
            return [(version, states[version])]
        if not states:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        return sorted(states.items(), reverse=True)

    def close(self) -> None:
        for states in self.versions.values():
            for state in states.values():
                if state.servable is not None:
                    state.servable.close()
                    state.servable = None


def startup_error(failures: list[tuple[str, int, ServingError]]) -> ServingError:
    """load_servables_fast.cc: `N servable(s) did not become available: {{{name: m version: v} due to
    error: <status>}, }` (docs/tf-serving.md §0.4)."""
    entries = "".join(f"{{{servable_id(name, version)} due to error: {error}}}, " for name, version, error in failures)
    return ServingError("UNKNOWN", f"{len(failures)} servable(s) did not become available: {{{entries}}}")
