"""TF Serving's Prometheus page (`--monitoring_config_file` with `prometheus_config { enable: true }`):
`:tensorflow:serving:request_count{model_name,status}` for every REST and gRPC request and
`:tensorflow:serving:request_latency{model_name,API,entrypoint}` (microseconds) for every one
answered OK, written as util/prometheus_exporter.cc writes them.

Nothing is counted unless the page is enabled (`enable()`): the REST fast path pays nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tfsconvert.server.status import invalid

DEFAULT_PATH = "/monitoring/prometheus/metrics"
_LIMITS = [10 * 1.8 ** i for i in range(33)]  # Buckets::Exponential(10, 1.8, 33), then DBL_MAX (+Inf)
_COUNT = ":tensorflow:serving:request_count"
_LATENCY = ":tensorflow:serving:request_latency"


def read_config(path: str) -> str | None:
    """The page's path from a text MonitoringConfig, or None if Prometheus is not enabled in it."""
    from google.protobuf import descriptor_pb2, descriptor_pool, text_format
    from google.protobuf.message_factory import GetMessageClass

    proto = descriptor_pb2.FileDescriptorProto(name="tfsconvert_monitoring_config.proto",
                                               package="tensorflow.serving", syntax="proto3")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # bool
    prometheus.field.add(name="path", number=2, type=9, label=1)  # string
    proto.message_type.add(name="MonitoringConfig").field.add(
        name="prometheus_config", number=1, type=11, label=1, type_name=".tensorflow.serving.PrometheusConfig")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    config = GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))()
    try:
        text_format.Parse(Path(path).read_text(encoding="utf-8"), config)
    except (OSError, UnicodeDecodeError, text_format.ParseError):
        raise invalid(f"Invalid protobuf file: '{path}'") from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PATH


class Metrics:
    """The counters and latency histograms, safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._latencies: dict[tuple[str, str, str], list] = {}  # -> [bucket counts..., sum]

    def record(self, model_name: str, api: str, entrypoint: str, code: str, micros: float) -> None:
        """One request's outcome, as http_server.cc and prediction_service_impl.cc record it."""
        with self._lock:
            self._counts[(model_name, code)] = self._counts.get((model_name, code), 0) + 1
            if code == "OK":
                cell = self._latencies.setdefault((model_name, api, entrypoint), [0] * (len(_LIMITS) + 1) + [0.0])
                cell[next((i for i, limit in enumerate(_LIMITS) if micros < limit), len(_LIMITS))] += 1
                cell[-1] += micros

    def page(self) -> str:
        with self._lock:
            counts, latencies = dict(self._counts), {key: list(cell) for key, cell in self._latencies.items()}
        lines = [f"# TYPE {_COUNT} counter"]
        lines += [f"{_COUNT}{{{_labels(model_name=model, status=code)}}} {count}"
                  for (model, code), count in counts.items()]
        lines.append(f"# TYPE {_LATENCY} histogram")
        for (model, api, entrypoint), cell in latencies.items():
            labels = _labels(model_name=model, API=api, entrypoint=entrypoint)
            total = 0
            for i, count in enumerate(cell[:-1]):
                total += count
                bound = "%g" % _LIMITS[i] if i < len(_LIMITS) else "+Inf"
                lines.append(f'{_LATENCY}_bucket{{{labels},le="{bound}"}} {total}')
            lines.append(f"{_LATENCY}_sum{{{labels}}} {'%g' % cell[-1]}")
            lines.append(f"{_LATENCY}_count{{{labels}}} {total}")
        return "\n".join(lines) + "\n"


def _labels(**values: str) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in values.items())


def _escape(value: str) -> str:
    """SanitizeLabelValue: backslashes and double quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


metrics: Metrics | None = None  # set by enable(): the front ends record only then


def enable() -> Metrics:
    global metrics
    metrics = Metrics()
    return metrics
