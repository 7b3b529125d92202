"""TF Serving's batching for the TF and ONNX backends (docs/tf-serving.md §6.4): a BatchingSession over a
SharedBatchScheduler (tensorflow_serving/batching/batching_session.cc,
tensorflow/core/kernels/batching_util/shared_batch_scheduler.h).

Every signature of a wrapped version has a queue of batches whose last batch is open. A run is a
task: its feeds, all with the same 0th dimension. It joins the open batch if it fits under
max_batch_size, else starts a new batch, refused once max_enqueued_batches are queued.
num_batch_threads workers, shared by every queue, take batches round-robin: a closed batch at
once, the open batch when it is full or batch_timeout_micros old (0: as soon as a worker is
free, so tasks pile up while every worker is busy). A batch is concatenated, padded up to the next
allowed_batch_sizes entry with the last task's first row, run once, and sliced back per task.

`TFSCONVERT_LOG_BATCHES=1` logs one line per batch run (tasks, rows, padded size).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
import traceback
from collections import deque
from functools import partial
from queue import SimpleQueue
from typing import Callable

import numpy as np

from tfsconvert.server import logs
from tfsconvert.server.backends import Servable
from tfsconvert.server.status import ServingError, invalid

LOG_ENV = "TFSCONVERT_LOG_BATCHES"
_LOG_BATCHES = bool(os.environ.get(LOG_ENV))
_LOG_WHERE = "batching/batching_session.cc"
Run = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


Done = Callable[[dict[str, np.ndarray] | None, ServingError | None], None]


class _Task:
    """One run waiting for its batch; `done(outputs, error)` is called once, from a batch thread."""

    __slots__ = ("feeds", "size", "finish")

    def __init__(self, feeds: dict[str, np.ndarray], size: int, done: Done) -> None:
        self.feeds, self.size, self.finish = feeds, size, done


class _Waiter:
    """The `done` of a caller that blocks until its task has run."""

    __slots__ = ("outputs", "error", "_done")

    def __init__(self) -> None:
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: ServingError | None = None
        self._done = threading.Lock()  # held until called: cheaper than an Event
        self._done.acquire()

    def __call__(self, outputs: dict[str, np.ndarray] | None, error: ServingError | None) -> None:
        self.outputs, self.error = outputs, error
        self._done.release()

    def wait(self) -> dict[str, np.ndarray]:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.outputs


def _task_size(feeds: dict[str, np.ndarray]) -> int:
    """batching_util.h ComputeTensorBatchSize: every input has the same 0th dimension (docs/tf-serving.md §6.4)."""
    if not feeds:
        raise invalid("Batching Run() must have at least one input tensor")
    sizes = set()
    for array in feeds.values():
        if array.ndim == 0:
            raise invalid("Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) > 1:
        raise invalid("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


class _Batch:
    __slots__ = ("tasks", "size", "opened")

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.opened = 0.0


class _Queue:
    """One signature's batches (shared_batch_scheduler.h `Queue`); guarded by the scheduler's lock."""

    def __init__(self, run: Run, params) -> None:
        self.run = run
        # Without large-batch splitting (not implemented here) batches are capped at the size a
        # task may have; with it, at max_execution_batch_size.
        self.limit = params.execution_batch_size
        self.timeout = params.batch_timeout_micros / 1e6
        self.max_enqueued = params.max_enqueued_batches
        self.allowed = list(params.allowed_batch_sizes)
        self.batches: deque[_Batch] = deque([_Batch()])

    def add(self, task: _Task, now: float) -> None:
        if task.size > self.limit:
            raise invalid(f"Task size {task.size} is larger than maximum input batch size {self.limit}")
        if self.batches[-1].size + task.size > self.limit:
            if len(self.batches) >= self.max_enqueued:
                raise ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was submitted is "
                                   f"full; currently {len(self.batches)} batches enqueued and max_enqueued_batches "
                                   f"is {self.max_enqueued}")
            self.batches.append(_Batch())
        batch = self.batches[-1]
        if not batch.tasks:
            batch.opened = now
        batch.tasks.append(task)
        batch.size += task.size

    def take(self, now: float) -> tuple[_Batch | None, float | None]:
        """(the batch to run, None), else (None, seconds until the open batch is due, or None if empty)."""
        if len(self.batches) == 1:
            batch = self.batches[0]
            if not batch.tasks:
                return None, None
            due = batch.opened + self.timeout - now
            if batch.size < self.limit and due > 0:
                return None, due
            self.batches.append(_Batch())
        return self.batches.popleft(), None

    def drain(self, error: ServingError) -> None:
        """Fail every task not yet taken by a worker."""
        for batch in self.batches:
            for task in batch.tasks:
                task.finish(None, error)
        self.batches = deque([_Batch()])

    def process(self, batch: _Batch) -> tuple[_Batch, int, dict[str, np.ndarray] | None, ServingError | None]:
        """Merge, pad and run once: (batch, padded size, outputs, error) for `_finish`."""
        padded = self._padded_size(batch.size)
        outputs, error = None, None
        try:
            outputs = self.run(_merge(batch.tasks, padded - batch.size))
        except ServingError as caught:
            error = caught
        except Exception as caught:  # noqa: BLE001 - a waiting request must get an answer whatever failed
            error = ServingError("INTERNAL", f"{type(caught).__name__}: {caught}")
        if _LOG_BATCHES:
            logs.info(_LOG_WHERE, f"Ran a batch of {len(batch.tasks)} tasks, {batch.size} rows padded to {padded}")
        return batch, padded, outputs, error

    def _padded_size(self, size: int) -> int:
        """RoundToLowestAllowedBatchSize: the first allowed size >= size (the last one is the limit)."""
        if not self.allowed:
            return size
        return self.allowed[bisect.bisect_left(self.allowed, size)]


def _finish(batch: _Batch, padded: int, outputs: dict[str, np.ndarray] | None, error: ServingError | None) -> None:
    """Split a run batch's outputs: every task gets its rows, or the batch's error."""
    results = [None] * len(batch.tasks)
    if error is None:
        try:
            results = _split(outputs, [task.size for task in batch.tasks], padded)
        except ServingError as caught:
            error = caught
    for task, result in zip(batch.tasks, results):
        try:
            task.finish(result, error)
        except Exception:  # noqa: BLE001 - one caller's failing callback must not stop every other answer
            traceback.print_exc()


def _merge(tasks: list[_Task], padding: int) -> dict[str, np.ndarray]:
    """batching_session.cc MergeInputTensors: concatenate along dim 0, then pad with the first row of
    the last task (docs/tf-serving.md §6.4; pad_variable_length_inputs is not implemented, so shapes must agree)."""
    if len(tasks) == 1 and not padding:
        return tasks[0].feeds
    merged = {}
    for alias in tasks[0].feeds:
        parts = [task.feeds[alias] for task in tasks]
        if any(part.shape[1:] != parts[0].shape[1:] for part in parts):
            # TF Serving's text, missing spaces included.
            raise ServingError("FAILED_PRECONDITION", f"Tensors with name '{alias}' from different tasks have "
                               "different shapes and padding is turned off.Set pad_variable_length_inputs to true, "
                               "or ensure that all tensors with the same namehave equal dimensions starting with "
                               "the first dim.")
        if padding:
            parts.append(np.repeat(parts[-1][:1], padding, axis=0))
        merged[alias] = np.concatenate(parts)
    return merged


def _split(outputs: dict[str, np.ndarray], sizes: list[int], padded: int) -> list[dict[str, np.ndarray]]:
    """batching_session.cc SplitOutputTensors: each task's rows of every output, padding dropped."""
    for array in outputs.values():
        if np.ndim(array) == 0:
            raise ServingError("FAILED_PRECONDITION", "Batched output tensor has 0 dimensions")
        if len(array) != padded:
            raise ServingError("FAILED_PRECONDITION", "Batched output tensor's 0th dimension does not equal the sum "
                               "of the 0th dimension sizes of the input tensors")
    if len(sizes) == 1:
        return [outputs] if sizes[0] == padded else [{alias: a[:sizes[0]] for alias, a in outputs.items()}]
    results, start = [], 0
    for size in sizes:
        results.append({alias: array[start:start + size] for alias, array in outputs.items()})
        start += size
    return results


class Scheduler:
    """`num_batch_threads` workers shared by every queue (SharedBatchScheduler), one lock for all.

    A worker only merges and runs batches; one more thread splits their outputs and hands every
    task its rows, so a worker starts its next run while the last one's answers are made."""

    def __init__(self, threads: int, name: str) -> None:
        self._cond = threading.Condition()
        self._queues: list[_Queue] = []
        self._next = 0
        self._closed = False
        self._ran: SimpleQueue = SimpleQueue()  # process() results for _finish; None: a worker has stopped
        self._threads = threads
        # Daemons: a run that never returns (a hanging model) must not keep the process alive.
        for index in range(threads):
            threading.Thread(target=self._work, name=f"{name}_{index}", daemon=True).start()
        threading.Thread(target=self._finish_ran, name=f"{name}_answers", daemon=True).start()

    def add_queue(self, run: Run, params) -> _Queue:
        queue = _Queue(run, params)
        with self._cond:
            self._queues.append(queue)
        return queue

    def remove_queue(self, queue: _Queue) -> None:
        with self._cond:
            self._queues.remove(queue)
            queue.drain(ServingError("UNAVAILABLE", "The batch scheduling queue was closed"))

    def schedule(self, queue: _Queue, task: _Task) -> None:
        with self._cond:
            queue.add(task, time.monotonic())
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        self._ran.put(None)
                        return
                    queue, batch, wait = self._next_batch(time.monotonic())
                    if batch is not None:
                        break
                    self._cond.wait(wait)
            self._ran.put(queue.process(batch))

    def _finish_ran(self) -> None:
        """Until every worker has stopped (after the batch it was running, if any)."""
        running = self._threads
        while running:
            ran = self._ran.get()
            if ran is None:
                running -= 1
            else:
                _finish(*ran)

    def _next_batch(self, now: float) -> tuple[_Queue | None, _Batch | None, float | None]:
        """Round-robin over the queues: (queue, batch), or the time until the earliest open batch is due."""
        wait = None
        count = len(self._queues)
        for offset in range(count):
            queue = self._queues[(self._next + offset) % count]
            batch, due = queue.take(now)
            if batch is not None:
                self._next = (self._next + offset + 1) % count
                return queue, batch, None
            if due is not None:
                wait = due if wait is None else min(wait, due)
        return None, None, wait


class BatchingServable:
    """A Servable whose runs go through one queue per signature (BatchingSession, docs/tf-serving.md §2.1 step 7)."""

    batchable = True

    def __init__(self, servable: Servable, scheduler: Scheduler, params) -> None:
        self._servable, self._scheduler = servable, scheduler
        self.signatures = servable.signatures
        self._queues = {name: scheduler.add_queue(partial(servable.run, name), params) for name in self.signatures}

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        waiter = _Waiter()
        self.submit(signature_name, feeds, waiter)
        return waiter.wait()

    def submit(self, signature_name: str, feeds: dict[str, np.ndarray], done: Done) -> None:
        """Queue a run without waiting: `done(outputs, error)` is called from a batch thread.
        A task the queue refuses (too large, queue full) raises here, and `done` is never called."""
        self._scheduler.schedule(self._queues[signature_name], _Task(feeds, _task_size(feeds), done))

    def close(self) -> None:
        for queue in self._queues.values():
            self._scheduler.remove_queue(queue)
        self._servable.close()


class Batching:
    """What `--enable_batching` adds: one scheduler for every model (its threads are shared, spec
    §6.4) and the wrap each loaded TF/ONNX version goes through. `refusal` is the status every load
    fails with when TF Serving refuses the parameters at session creation (docs/tf-serving.md §7 case 28)."""

    def __init__(self, params, refusal: ServingError | None = None) -> None:
        self.params, self.refusal = params, refusal
        self.scheduler = Scheduler(params.num_batch_threads, params.thread_pool_name) if refusal is None else None

    def wrap(self, servable: Servable) -> Servable:
        if self.refusal is not None:
            raise self.refusal
        return BatchingServable(servable, self.scheduler, self.params)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
