"""Batching parameters for some hardware when nothing was measured, with the reason for every value.

Two rules: `measured` (the default), the values that measured best across our fixtures on a 2-core machine
(docs/benchmarks.md "serving-config --calibrate"), and `field-rule`, the field's usual starting points (TF
Serving's batching guide, docs/tf-serving.md §6.4). Both come with the --tensorflow_session_parallelism the
server should run with (0: TensorFlow's choice). `serving-config --calibrate` measures instead.
"""

from __future__ import annotations

from tfsconvert.server.batching_config import BatchingParameters
from tfsconvert.server.hardware import Hardware

MAX_BATCH_SIZE = 128
MAX_ENQUEUED_BATCHES = 1_000_000
SMALLEST_ALLOWED_BATCH = 8
MEASURED_MAX_BATCH_SIZE = 128
MEASURED_SESSION_PARALLELISM = 1
RULES = ("measured", "field-rule")
CALIBRATE_SECONDS, CALIBRATE_CONCURRENCY = 60.0, 32  # serving-config --calibrate's defaults


def recommend(hardware: Hardware, rule: str = "measured") -> tuple[BatchingParameters, dict[str, str], int]:
    """(parameters, reason per field, session parallelism) for `hardware`: the GPU recipe if it has GPUs, else
    the CPU one of `rule`."""
    if rule not in RULES:
        raise ValueError(rule)
    if rule == "measured" and not hardware.gpus:
        return _measured(hardware)
    sizes = allowed_sizes(MAX_BATCH_SIZE)
    if hardware.gpus:
        threads = hardware.gpus
        thread_reason = (f"{threads} = the number of GPUs: one batch in flight per GPU keeps each busy without "
                         f"batches contending for it.")
        timeout_reason = ("0 to start. On GPU a few milliseconds (1000-5000) usually fills batches better for a small "
                          "latency cost: raise it while watching p99 latency.")
    else:
        threads = 2 * hardware.cpus + 1
        thread_reason = (f"{threads} = 2 x {hardware.cpus} CPUs ({hardware.cpus_source}) + 1: batches run in "
                         f"parallel, one per thread.\nTF Serving's guide suggests = CPUs ({hardware.cpus}): "
                         f"measure both, and one thread per TensorFlow pool:\ntfsconvert bench MODEL_PATH "
                         f"--batch-threads 1,{hardware.cpus},{threads} --session-parallelism 0,1")
        timeout_reason = ("0: a batch runs as soon as a batch thread is free, adding no latency.\nThen try 1000-10000 "
                          "(1-10 ms) and keep what measures best.")
    params = BatchingParameters(max_batch_size=MAX_BATCH_SIZE, batch_timeout_micros=0,
                                max_enqueued_batches=MAX_ENQUEUED_BATCHES, num_batch_threads=threads,
                                allowed_batch_sizes=sizes, pad_variable_length_inputs=False)
    reasons = {
        "max_batch_size": (f"{MAX_BATCH_SIZE}: the largest batch formed. A single request with more rows fails\n"
                           f"(`Task size N is larger than maximum input batch size {MAX_BATCH_SIZE}`). Keep about "
                           f"2 x {MAX_BATCH_SIZE} requests in flight to fill batches."),
        "batch_timeout_micros": timeout_reason,
        "max_enqueued_batches": (f"{MAX_ENQUEUED_BATCHES}: effectively unbounded while measuring. For online serving "
                                 f"set it near num_batch_threads ({threads})\nso overload fails fast with HTTP 503 "
                                 f"(`The batch scheduling queue ... is full`) instead of queueing."),
        "num_batch_threads": thread_reason,
        "allowed_batch_sizes": (f"{', '.join(map(str, sizes))}: batches are padded up to the next size, so few "
                                f"distinct shapes run (padding costs compute).\nTF Serving refuses a list that does "
                                f"not end at max_batch_size."),
        "pad_variable_length_inputs": ("false: requests share a batch only if their shapes match apart from dim 0;\n"
                                       "set true for variable-length inputs (sequences) so they are padded."),
    }
    return params, reasons, 0


def _measured(hardware: Hardware) -> tuple[BatchingParameters, dict[str, str], int]:
    """The CPU values that measured best across our fixtures on 2 cores (bench/calibrate.py --fixtures)."""
    threads = max(1, hardware.cpus // 2)
    params = BatchingParameters(max_batch_size=MEASURED_MAX_BATCH_SIZE, batch_timeout_micros=0,
                                max_enqueued_batches=MAX_ENQUEUED_BATCHES, num_batch_threads=threads,
                                allowed_batch_sizes=allowed_sizes(MEASURED_MAX_BATCH_SIZE),
                                pad_variable_length_inputs=False)
    measured = "Best worst case across our fixtures at 32 concurrent requests on 2 cores (docs/benchmarks.md)"
    reasons = {
        "max_batch_size": (f"{MEASURED_MAX_BATCH_SIZE}: {measured}:\nwhile one batch runs, every request that "
                           f"arrives joins the next one. A single request with more rows fails\n(`Task size N is "
                           f"larger than maximum input batch size {MEASURED_MAX_BATCH_SIZE}`): raise it for such "
                           f"clients."),
        "batch_timeout_micros": "0: a batch runs as soon as a batch thread is free, adding no latency.",
        "max_enqueued_batches": (f"{MAX_ENQUEUED_BATCHES}: effectively unbounded. For online serving set it near "
                                 f"num_batch_threads ({threads})\nso overload fails fast with HTTP 503 (`The batch "
                                 f"scheduling queue ... is full`) instead of queueing."),
        "num_batch_threads": (f"{threads} = {hardware.cpus} CPUs ({hardware.cpus_source}) / 2, with "
                              f"--tensorflow_session_parallelism={MEASURED_SESSION_PARALLELISM}: {measured};\n"
                              f"each batch keeps one core and the server's HTTP threads keep the others. The "
                              f"field's rule (2 x CPUs + 1) is\n`tfsconvert serving-config --batching-defaults "
                              f"field-rule`; `--calibrate` measures this machine."),
        "allowed_batch_sizes": (f"{', '.join(map(str, allowed_sizes(MEASURED_MAX_BATCH_SIZE)))}: batches are padded "
                                f"up to the next size, so few distinct shapes run.\nTF Serving refuses a list that "
                                f"does not end at max_batch_size."),
        "pad_variable_length_inputs": ("false: requests share a batch only if their shapes match apart from dim 0;\n"
                                       "set true for variable-length inputs (sequences) so they are padded."),
    }
    return params, reasons, MEASURED_SESSION_PARALLELISM


def allowed_sizes(max_batch_size: int) -> tuple[int, ...]:
    """Powers of two from 8 below `max_batch_size`, then `max_batch_size` itself (TF Serving's rule)."""
    sizes, size = [], SMALLEST_ALLOWED_BATCH
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    return (*sizes, max_batch_size)
