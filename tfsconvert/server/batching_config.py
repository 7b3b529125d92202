"""TF Serving's `--batching_parameters_file`: a text-format `BatchingParameters` (docs/tf-serving.md §6.4).

Read, checked and written without TensorFlow (the message is declared in tfsconvert.tfproto).
Unset fields take TF Serving's defaults (`BatchingParameters` in
servables/tensorflow/session_bundle_config.proto; the values of SharedBatchScheduler's options):
max_batch_size 1000, batch_timeout_micros 0, max_enqueued_batches 10, num_batch_threads = the
CPUs in the affinity mask, thread_pool_name "batch_threads", no allowed_batch_sizes, no padding,
no large-batch splitting (max_execution_batch_size = max_batch_size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from tfsconvert import tfproto
from tfsconvert.errors import InputError
from tfsconvert.server.hardware import schedulable_cpus

# Fields written `name { value: N }` (google.protobuf wrappers); the others are plain scalars.
_WRAPPED = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size")


@dataclass(frozen=True)
class BatchingParameters:
    """The batching parameters TF Serving runs with: the file's values, TF Serving's defaults for the rest."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=schedulable_cpus)
    thread_pool_name: str = "batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None  # None: max_batch_size

    @property
    def execution_batch_size(self) -> int:
        """The largest batch actually run (max_execution_batch_size only counts with splitting)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size

    def problems(self) -> list[str]:
        """Every status TF Serving fails with for these values (at start-up or at each model load)."""
        found = []
        if self.num_batch_threads < 1:
            found.append(f"INVALID_ARGUMENT: num_batch_threads must be positive; was {self.num_batch_threads}")
        if self.max_batch_size < 1:
            found.append(f"INVALID_ARGUMENT: input_batch_size_limit must be positive; was {self.max_batch_size}")
        if self.batch_timeout_micros < 0:
            found.append(f"INVALID_ARGUMENT: batch_timeout_micros must be non-negative; was "
                         f"{self.batch_timeout_micros}")
        if self.max_enqueued_batches < 1:
            found.append(f"INVALID_ARGUMENT: max_enqueued_batches must be positive; was {self.max_enqueued_batches}")
        return found + self._allowed_sizes_problems()

    def _allowed_sizes_problems(self) -> list[str]:
        sizes = self.allowed_batch_sizes
        if not sizes:
            return []
        found = []
        if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
            # Required by the proto; TF Serving pads to the first size that fits, so a bad order mis-pads.
            found.append(f"INVALID_ARGUMENT: allowed_batch_sizes entries must be positive and in increasing order; "
                         f"got {', '.join(map(str, sizes))}")
        if not self.enable_large_batch_splitting:
            if sizes[-1] != self.max_batch_size:
                found.append(f"INVALID_ARGUMENT: Last entry in allowed_batch_sizes must match max_batch_size; "
                             f"last entry was {sizes[-1]}; expected {self.max_batch_size}")
        elif sizes[-1] != self.execution_batch_size:
            found.append(f"INVALID_ARGUMENT: Last entry in allowed_batch_sizes must be equal to "
                         f"max_execution_batch_size; last entry was {sizes[-1]}; expected {self.execution_batch_size}")
        return found

    def to_json(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["allowed_batch_sizes"] = list(self.allowed_batch_sizes)
        return data


class BadBatchingParameters(InputError):
    """A batching parameters file TF Serving refuses; `tf_serving` holds its status line(s)."""

    def __init__(self, message: str, hint: str, tf_serving: list[str]) -> None:
        super().__init__("bad-batching-parameters", message, hint)
        self.tf_serving = tf_serving


def read_batching_parameters(path: Path | str) -> BatchingParameters:
    """Parse and check a batching parameters file; BadBatchingParameters (exit 2) if TF Serving would refuse it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadBatchingParameters(f"{path} cannot be read: {error}", "check the path and its permissions",
                                    [f"INVALID_ARGUMENT: Invalid protobuf file: '{path}'"]) from None
    return parse_batching_parameters(text, str(path))


def parse_batching_parameters(text: str, source: str = "<text>") -> BatchingParameters:
    """Parse and check text-format BatchingParameters (`source` names it in errors)."""
    try:
        message = tfproto.parse_text("BatchingParameters", text, strict=True)
    except tfproto.ParseError as error:
        detail = str(error).replace("tfsconvert.tf.", "tensorflow.serving.")
        raise BadBatchingParameters(
            f"{source} is not a valid text-format BatchingParameters ({detail}); TF Serving exits at start-up",
            "fix the line:column given, e.g. max_batch_size { value: 128 } (wrapped fields need { value: N })",
            [f"INVALID_ARGUMENT: Invalid protobuf file: '{source}'"]) from None
    params = BatchingParameters(**{name: getattr(message, name).value for name in _WRAPPED
                                   if message.HasField(name)},
                                allowed_batch_sizes=tuple(message.allowed_batch_sizes),
                                pad_variable_length_inputs=message.pad_variable_length_inputs)
    problems = params.problems()
    if problems:
        raise BadBatchingParameters(f"{source}: TF Serving refuses these batching parameters: " + "; ".join(problems),
                                    "make allowed_batch_sizes increase and end at max_batch_size, and keep "
                                    "num_batch_threads, max_batch_size and max_enqueued_batches at least 1",
                                    problems)
    return params


def format_batching_parameters(params: BatchingParameters, reasons: dict[str, str] | None = None) -> str:
    """The text proto for `params`, each field after a `# why` comment taken from `reasons`.

    Writes the fields a tuning changes; thread pool name and splitting only when not the default.
    """
    reasons = reasons or {}
    default = BatchingParameters(num_batch_threads=params.num_batch_threads)
    names = ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
             "allowed_batch_sizes", "pad_variable_length_inputs"]
    names += [n for n in ("thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size")
              if getattr(params, n) != getattr(default, n)]
    lines = []
    for name in names:
        lines += [f"# {line}" for line in reasons.get(name, "").splitlines()]
        lines += _field_lines(name, getattr(params, name))
    return "\n".join(lines) + "\n"


def _field_lines(name: str, value) -> list[str]:
    if isinstance(value, tuple):
        return [f"{name}: {v}" for v in value]
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) else str(value)
    return [f"{name} {{ value: {text} }}" if name in _WRAPPED else f"{name}: {text}"]
