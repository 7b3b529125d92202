"""`--enable_batching` (docs/tf-serving.md §6.4, §7 cases 28, 43): the scheduler in-process on a fake model, then
two server processes serving the same models, one batching and one not, compared response by
response over REST and gRPC; a hanging model fills the queue; refused parameter files."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import numpy as np
import pytest
import requests

from conftest import converted
from harness import ServerProcess, config_file, grpc_stubs, started
from tfsconvert.server.batching_config import BatchingParameters
from tfsconvert.server.batching import LOG_ENV, Batching
from tfsconvert.server.status import ServingError

BATCHED_FILE = ("max_batch_size { value: 8 } batch_timeout_micros { value: 50000 } max_enqueued_batches { value: 100 "
                "} num_batch_threads { value: 1 } allowed_batch_sizes: 4 allowed_batch_sizes: 8")
BATCH_LINE = re.compile(r"Ran a batch of (\d+) tasks, (\d+) rows padded to (\d+)")
QUEUE_FULL = ("The batch scheduling queue to which this task was submitted is full; currently 1 batches enqueued and "
              "max_enqueued_batches is 1")
RNG = np.random.default_rng(7)
CTR_ROWS = RNG.normal(size=(8, 600)).astype(np.float32).round(4).tolist()
EXAMPLES = [{"x": [1.0, 2.0]}, {"x": [0.5, -1.5]}, {"x": [-3.0, 0.25]}]


def concurrently(call, arguments: list) -> list:
    """call(argument) for each argument, all threads released at once; the results in order."""
    results: list = [None] * len(arguments)
    barrier = threading.Barrier(len(arguments))

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = call(arguments[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# ---------------------------------------------------------------------------------------------
# The scheduler in-process, on a model that doubles its rows and records the batches it runs


class Doubler:
    """A fake Servable: y = 2x; `scalar` makes an output without a batch dimension."""

    batchable = True
    signatures = {"serving_default": None}

    def __init__(self, scalar: bool = False, gate: threading.Event | None = None) -> None:
        self.batches: list[np.ndarray] = []
        self.running = threading.Event()
        self._scalar, self._gate = scalar, gate

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches.append(feeds["x"].copy())
        self.running.set()
        if self._gate is not None:
            self._gate.wait(30)
        return {"y": feeds["x"] * 2, **({"total": np.float32(feeds["x"].sum())} if self._scalar else {})}

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def batched_doubler():
    """(wrapped servable, fake) with TF Serving-style parameters; the scheduler stops afterwards."""
    made = []

    def make(fake: Doubler, **params) -> Batching:
        batching = Batching(BatchingParameters(**{"num_batch_threads": 1, **params}))
        made.append(batching)
        return batching.wrap(fake)

    yield make
    for batching in made:
        batching.close()


def test_tasks_merge_pad_with_the_last_tasks_first_row_and_split_spec_6_4(batched_doubler):
    fake = Doubler()
    servable = batched_doubler(fake, max_batch_size=8, batch_timeout_micros=200_000, allowed_batch_sizes=(4, 8))
    feeds = [np.array([[1.0, 1.5]]), np.array([[2.0, 2.5], [3.0, 3.5]])]
    results = concurrently(lambda x: servable.run("serving_default", {"x": x}), feeds)
    assert [r["y"].tolist() for r in results] == [[[2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]
    (batch,) = fake.batches
    rows = {tuple(row) for row in batch[:3].tolist()}
    assert rows == {(1.0, 1.5), (2.0, 2.5), (3.0, 3.5)} and len(batch) == 4
    assert batch[3].tolist() in ([1.0, 1.5], [2.0, 2.5])  # a task's first row, whichever task came last


def test_padding_row_is_the_first_row_of_the_last_task_spec_6_4(batched_doubler):
    fake = Doubler()
    servable = batched_doubler(fake, max_batch_size=8, allowed_batch_sizes=(4, 8))
    assert servable.run("serving_default", {"x": np.array([[5.0], [6.0]])})["y"].tolist() == [[10.0], [12.0]]
    assert fake.batches[0].tolist() == [[5.0], [6.0], [5.0], [5.0]]


@pytest.mark.parametrize("feeds, message", [
    ({}, "Batching Run() must have at least one input tensor"),
    ({"x": np.float32(1.0)}, "Batching Run() input tensors must have at least one dimension"),
    ({"x": np.zeros((2, 1)), "z": np.zeros((3, 1))}, "Batching Run() input tensors must have equal 0th-dimension size"),
    ({"x": np.zeros((9, 1))}, "Task size 9 is larger than maximum input batch size 8"),
])
def test_task_errors_spec_6_4(batched_doubler, feeds, message):
    servable = batched_doubler(Doubler(), max_batch_size=8)
    with pytest.raises(ServingError) as raised:
        servable.run("serving_default", feeds)
    assert (raised.value.code, raised.value.message) == ("INVALID_ARGUMENT", message)


def test_batch_errors_reach_every_task_spec_6_4(batched_doubler):
    servable = batched_doubler(Doubler(scalar=True), max_batch_size=8)
    with pytest.raises(ServingError) as raised:
        servable.run("serving_default", {"x": np.ones((2, 1))})
    assert str(raised.value) == "FAILED_PRECONDITION: Batched output tensor has 0 dimensions"

    servable = batched_doubler(Doubler(), max_batch_size=8, batch_timeout_micros=200_000)
    errors = concurrently(lambda x: _error_of(servable, x), [np.ones((1, 2)), np.ones((1, 3))])
    assert errors == [("FAILED_PRECONDITION", "Tensors with name 'x' from different tasks have different shapes and "
                       "padding is turned off.Set pad_variable_length_inputs to true, or ensure that all tensors with "
                       "the same namehave equal dimensions starting with the first dim.")] * 2


def _error_of(servable, x: np.ndarray) -> tuple[str, str] | None:
    try:
        servable.run("serving_default", {"x": x})
    except ServingError as error:
        return error.code, error.message
    return None


def test_queue_full_when_max_enqueued_batches_are_waiting_spec_7_43(batched_doubler):
    gate = threading.Event()
    fake = Doubler(gate=gate)
    servable = batched_doubler(fake, max_batch_size=1, max_enqueued_batches=1)
    results: list = []
    first = threading.Thread(target=lambda: results.append(servable.run("serving_default", {"x": np.ones((1, 1))})))
    first.start()
    assert fake.running.wait(10)  # the worker runs the first batch; the next one waits in the queue
    second = threading.Thread(target=lambda: results.append(servable.run("serving_default", {"x": np.ones((1, 1))})))
    second.start()
    try:
        assert _error_of(servable, np.ones((1, 1))) == ("UNAVAILABLE", QUEUE_FULL)
    finally:
        gate.set()
    first.join(10)
    second.join(10)
    assert [r["y"].tolist() for r in results] == [[[2.0]], [[2.0]]]


def test_a_worker_runs_the_next_batch_while_the_last_ones_answers_are_made(batched_doubler):
    """One batch thread: the first task's `done` blocks until the second batch has run, which it
    could not if answers were made on the batch thread."""
    fake = Doubler()
    servable = batched_doubler(fake, max_batch_size=1)
    first_answered = threading.Event()
    seen = []

    def first_done(outputs, error) -> None:
        deadline = time.monotonic() + 10
        while len(fake.batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append((outputs["y"].tolist(), len(fake.batches)))
        first_answered.set()

    servable.submit("serving_default", {"x": np.ones((1, 1))}, first_done)
    assert fake.running.wait(10)
    assert servable.run("serving_default", {"x": np.full((1, 1), 3.0)})["y"].tolist() == [[6.0]]
    assert first_answered.wait(10)
    assert seen == [([[2.0]], 2)]  # the second batch ran while the first answer was being made


# ---------------------------------------------------------------------------------------------
# Server processes: the same models with and without batching


@pytest.fixture(scope="module")
def models(fixture_path, tmp_path_factory):
    return {"ctr": fixture_path("ctr_ranker"), "examples": fixture_path("serving_examples"),
            "mlp_onnx": converted(fixture_path, tmp_path_factory, "onnx", "frozen_mlp_pb")[1]}


def _config(path, models) -> str:
    return f"--model_config_file={config_file(path, models)}"


@pytest.fixture(scope="module")
def plain(models, tmp_path_factory):
    process = started(_config(tmp_path_factory.mktemp("plain") / "models.config", models))
    yield process
    assert process.terminate() == 0, process.stderr[-2000:]


@pytest.fixture(scope="module")
def batched(models, tmp_path_factory):
    directory = tmp_path_factory.mktemp("batched")
    (directory / "batching.txt").write_text(BATCHED_FILE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOG_ENV, "1")
        process = started(_config(directory / "models.config", models), "--enable_batching",
                          f"--batching_parameters_file={directory / 'batching.txt'}")
    yield process
    assert process.terminate() == 0, process.stderr[-2000:]


def batches(server: ServerProcess, since: int = 0, tasks: int = 0) -> list[tuple[int, int, int]]:
    """(tasks, rows, padded rows) of the batches logged after the first `since`, once they hold
    `tasks` tasks: a batch is logged before its responses leave, but the harness reads stderr later."""
    deadline = time.monotonic() + 10
    while True:
        found = [tuple(map(int, m.groups())) for m in map(BATCH_LINE.search, server.stderr_lines) if m][since:]
        if sum(count for count, _, _ in found) >= tasks or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def post(server: ServerProcess, path: str, body: dict) -> dict:
    response = requests.post(server.url(path), json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def assert_close(batched_body, plain_body) -> None:
    """Equal structure and strings; numbers within float32 rounding. Batching itself changes no
    value, but a matrix product over 8 rows rounds differently from one over 1 row (oneDNN)."""
    if isinstance(plain_body, dict):
        assert batched_body.keys() == plain_body.keys()
        for key in plain_body:
            assert_close(batched_body[key], plain_body[key])
    elif isinstance(plain_body, list):
        assert len(batched_body) == len(plain_body)
        for b, p in zip(batched_body, plain_body):
            assert_close(b, p)
    elif isinstance(plain_body, float):
        assert batched_body == pytest.approx(plain_body, rel=1e-5, abs=1e-6)
    else:
        assert batched_body == plain_body


REQUESTS = {
    "ctr": [("/v1/models/ctr:predict", {"instances": [row]}) for row in CTR_ROWS[:5]] + [
        ("/v1/models/ctr:predict", {"instances": CTR_ROWS[5:7]}), ("/v1/models/ctr:predict", {"inputs": CTR_ROWS[7:]})],
    "mlp_onnx": [("/v1/models/mlp_onnx:predict", {"instances": [[float(i), 2.0, -1.0, 0.5]]}) for i in range(6)] + [
        ("/v1/models/mlp_onnx:predict", {"inputs": {"features": [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.0, 2.0]]}})],
    "examples": [("/v1/models/examples:predict", {"instances": ["a", "bb", "ccc"]}),
                 ("/v1/models/examples:predict", {"instances": [{"text": {"b64": "aGk="}}]})] + [
        ("/v1/models/examples:classify", {"signature_name": "classify", "examples": [e]}) for e in EXAMPLES] + [
        ("/v1/models/examples:regress", {"signature_name": "regress", "examples": EXAMPLES[:2]})],
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_batched_responses_equal_unbatched_spec_6_4(plain, batched, name):
    expected = [post(plain, path, body) for path, body in REQUESTS[name]]
    before = len(batches(batched))
    got = concurrently(lambda request: post(batched, *request), REQUESTS[name])
    if name == "ctr":
        assert_close(got, expected)
    else:
        assert got == expected  # row-independent arithmetic: identical
    assert sum(tasks for tasks, _, _ in batches(batched, before, len(got))) == len(got)


def test_padding_is_removed_from_each_response_spec_6_4(plain, batched):
    bodies = [{"instances": [row]} for row in CTR_ROWS[:3]]
    before = len(batches(batched))
    got = concurrently(lambda body: post(batched, "/v1/models/ctr:predict", body), bodies)
    assert [len(body["predictions"]) for body in got] == [1, 1, 1]
    assert_close(got, [post(plain, "/v1/models/ctr:predict", body) for body in bodies])
    # However the 3 requests were grouped, 1 to 3 rows are padded to 4, the first allowed size.
    ran = batches(batched, before, 3)
    assert ran and all(rows <= 3 and padded == 4 for _, rows, padded in ran)
    assert all(padded in (4, 8) for _, _, padded in batches(batched))


def test_concurrent_requests_share_batches_spec_6_4(batched):
    bodies = [{"instances": [row]} for row in CTR_ROWS]
    before = len(batches(batched))
    concurrently(lambda body: post(batched, "/v1/models/ctr:predict", body), bodies)
    ran = batches(batched, before, 8)
    assert sum(tasks for tasks, _, _ in ran) == 8 and max(tasks for tasks, _, _ in ran) > 1


def test_grpc_predict_goes_through_the_batcher_spec_6_4(plain, batched):
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2

    def predict(server, row):
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ctr"))
        request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.array([row], dtype=np.float32)))
        return list(grpc_stubs(server)[0].Predict(request, timeout=60).outputs["probability"].float_val)

    before = len(batches(batched))
    got = concurrently(lambda row: predict(batched, row), CTR_ROWS[:4])
    assert got == [pytest.approx(predict(plain, row), rel=1e-5, abs=1e-6) for row in CTR_ROWS[:4]]
    assert [len(values) for values in got] == [1] * 4
    assert sum(tasks for tasks, _, _ in batches(batched, before, 4)) == 4


def test_a_task_larger_than_max_batch_size_is_refused_spec_6_4(plain, batched):
    body = {"instances": CTR_ROWS + CTR_ROWS[:1]}
    response = requests.post(batched.url("/v1/models/ctr:predict"), json=body, timeout=60)
    assert (response.status_code, response.json()) == (
        400, {"error": "Task size 9 is larger than maximum input batch size 8"})
    assert len(post(plain, "/v1/models/ctr:predict", body)["predictions"]) == 9


# ---------------------------------------------------------------------------------------------
# Queue full and refused parameters


@pytest.mark.slow
def _post_until_closed(url: str, body: dict) -> None:
    """A request left unanswered until the server stops and closes its connection."""
    with contextlib.suppress(requests.ConnectionError):
        requests.post(url, json=body, timeout=30)


def test_queue_full_is_503_and_unavailable_and_the_server_still_stops_spec_7_43(fixture_path, tmp_path):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2

    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 1 } max_enqueued_batches { value: 1 } num_batch_threads { value: 1 }")
    server = started("--model_name=hang", f"--model_base_path={fixture_path('validate_hanging_model')}",
                     "--enable_batching", f"--batching_parameters_file={parameters}")
    body = {"instances": [[1.0, 2.0, 3.0, 4.0]]}
    url = server.url("/v1/models/hang:predict")
    try:
        hanging = [threading.Thread(target=_post_until_closed, args=(url, body), daemon=True) for _ in range(2)]
        for thread in hanging:  # the first one runs (forever), the second one waits in the queue
            thread.start()
            thread.join(1.0)
        response = requests.post(url, json=body, timeout=30)
        assert (response.status_code, response.json()) == (503, {"error": QUEUE_FULL})
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="hang"))
        request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.ones((1, 4), dtype=np.float32)))
        with pytest.raises(grpc.RpcError) as raised:
            grpc_stubs(server)[0].Predict(request, timeout=30)
        assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.UNAVAILABLE, QUEUE_FULL)
    finally:
        assert server.terminate() == 0, server.stderr[-2000:]


@pytest.mark.parametrize("cli", [False, True], ids=["server", "tfsconvert-serve"])
def test_allowed_batch_sizes_not_ending_at_max_batch_size_fail_every_load_spec_7_28(fixture_path, tmp_path, cli):
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16")
    base = fixture_path("ctr_ranker")
    flags = ([str(base), "--enable-batching", "--batching-parameters-file", str(parameters)] if cli else
             ["--model_name=base", f"--model_base_path={base}", "--enable_batching",
              f"--batching_parameters_file={parameters}"])
    server = ServerProcess(*flags, "--max_num_load_retries=0", cli=cli)
    status = ("INVALID_ARGUMENT: Last entry in allowed_batch_sizes must match max_batch_size; last entry was 16; "
              "expected 32")
    assert server.finish() == (1 if cli else 255, f"Failed to start server. Error: UNKNOWN: 1 servable(s) did not "
                               f"become available: {{{{{{name: base version: 1}} due to error: {status}}}, }}\n")
    assert f"Loading servable: {{name: base version: 1}} failed: {status}" in server.stderr


@pytest.mark.parametrize("text, status", [
    ("max_batch_size: 32", "INVALID_ARGUMENT: Invalid protobuf file: '{path}'"),
    ("num_batch_threads { value: 0 }", "INVALID_ARGUMENT: num_batch_threads must be positive; was 0"),
])
def test_unreadable_parameters_stop_start_up_spec_6_4(tmp_path, text, status):
    parameters = tmp_path / "batching.txt"
    parameters.write_text(text)
    server = ServerProcess("--model_name=m", f"--model_base_path={tmp_path}", "--enable_batching",
                           f"--batching_parameters_file={parameters}")
    assert server.finish() == (255, f"Failed to start server. Error: {status.format(path=parameters)}\n")
