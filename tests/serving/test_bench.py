"""`tfsconvert bench`: the load generator against a stub HTTP server, URL parsing, then small runs on
the savedmodel_base fixture (sandboxed servers with and without batching, the in-process limit) and
against a running `tfsconvert serve` (REST and gRPC URLs)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import REPO, run_cli
from tfsconvert.errors import InputError
from tfsconvert.server import hardware
from tfsconvert.serving import loadgen, tuning
from tfsconvert.serving.bench_target import Target, parse_url
from tfsconvert.server.sandbox import free_port
from server.harness import started

RUN_FIELDS = {"batching", "concurrency", "qps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "requests"}


class _Stub(BaseHTTPRequestHandler):
    """200 with a small JSON body; every `fail_every`-th request 503; `close_every`-th closes the
    connection; `stall_every`-th answers after 2 s."""

    protocol_version = "HTTP/1.1"
    count = 0
    fail_every = close_every = stall_every = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers["Content-Length"]))
        with _Stub.lock:
            _Stub.count += 1
            number = _Stub.count
        if self.stall_every and number % self.stall_every == 0:
            time.sleep(2)
        failed = self.fail_every and number % self.fail_every == 0
        body = b'{"error": "overloaded"}' if failed else b'{"outputs": [[0.5]]}'
        self.send_response(503 if failed else 200)
        self.send_header("Content-Length", str(len(body)))
        if self.close_every and number % self.close_every == 0:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture
def stub(pure):
    """A threaded stub server on a free loopback port; yields the handler class to configure. The load
    generator's children use the C clients or their pure-Python twin (`pure`)."""
    _Stub.count, _Stub.fail_every, _Stub.close_every, _Stub.stall_every = 0, 0, 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stub.port = server.server_address[1]
    yield _Stub
    server.shutdown()
    server.server_close()


def _job(port: int, connections: int, requests: int) -> loadgen.Job:
    request = loadgen.http_request("127.0.0.1", port, "/v1/models/m:predict", b'{"inputs": [[1.0]]}')
    return loadgen.Job("rest", "127.0.0.1", port, [request], connections, requests, None, timeout=10)


def test_loadgen_counts_every_answer_split_over_processes(stub):
    seen = []
    measured = loadgen.run(_job(stub.port, 4, 300), processes=2, progress=seen.append)
    assert len(measured.latencies) == 300 and measured.errors == 0
    assert stub.count == 300 + 4  # one uncounted warm-up request per connection
    assert all(0 < latency < 10 for latency in measured.latencies)
    assert seen[-1] == 300 and seen == sorted(seen)


def test_loadgen_reports_failed_answers_and_reconnects(stub):
    stub.fail_every, stub.close_every = 10, 7
    measured = loadgen.run(_job(stub.port, 3, 200), processes=1)
    assert measured.errors + len(measured.latencies) == 200
    assert measured.errors == 20  # answers 10, 20, ... 200 of 203 (3 uncounted warm-ups come first)
    assert measured.error_samples == ['HTTP 503: {"error": "overloaded"}']


def test_loadgen_times_out_a_stalled_answer_and_goes_on(stub):
    stub.stall_every = 25
    measured = loadgen.run(replace(_job(stub.port, 2, 60), timeout=0.5))
    assert measured.errors == 2 and len(measured.latencies) == 58  # answers 25 and 50 of 62 (2 warm-ups first)
    assert measured.error_samples == ["TimeoutError: no answer within 0.5 s"]


def test_loadgen_duration_bound(stub):
    measured = loadgen.run(replace(_job(stub.port, 2, 0), requests=None, duration=0.5))
    assert 0.5 <= measured.seconds < 2 and len(measured.latencies) > 10 and measured.errors == 0


def test_loadgen_unreachable_server(pure):
    with pytest.raises(loadgen.LoadError, match="cannot reach 127.0.0.1"):
        loadgen.run(_job(free_port(), 1, 10))


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:8501/v1/models/ranker", Target("rest", "127.0.0.1", 8501, "ranker", None)),
    ("http://localhost/v1/models/ranker/versions/3", Target("rest", "localhost", 8501, "ranker", 3)),
    ("grpc://10.0.0.5", Target("grpc", "10.0.0.5", 8500, "named", None)),
])
def test_parse_url(url, expected):
    assert parse_url(url, "named" if "grpc" in url else None, None) == expected


@pytest.mark.parametrize("url, protocol, code", [
    ("ftp://127.0.0.1:21", None, "bad-url"),
    ("http://127.0.0.1:8501/v2/things", None, "bad-url"),
    ("http://127.0.0.1:8501", None, "bad-option"),  # no model name anywhere
    ("http://127.0.0.1:8501/v1/models/m", "grpc", "bad-option"),
])
def test_parse_url_refusals(url, protocol, code):
    with pytest.raises(InputError) as caught:
        parse_url(url, None, protocol)
    assert caught.value.code == code


@pytest.mark.parametrize("args, code", [
    (["--concurrency", "0,4"], "bad-option"),
    (["--batching", "sometimes"], "bad-option"),
    (["--requests", "0"], "bad-option"),
    (["--server-flag", "tensorflow_intra_op_parallelism=1"], "bad-option"),
    (["--batch-threads", "2,0"], "bad-option"),
    (["--session-parallelism", "1,-1"], "bad-option"),
])
def test_bad_options_exit_2(fixture_path, args, code):
    result = run_cli("bench", fixture_path("savedmodel_base"), *args, "--json")
    assert result.exit_code == 2 and result.json()["error"]["code"] == code


def test_unreachable_url_exits_2():
    result = run_cli("bench", f"http://127.0.0.1:{free_port()}/v1/models/m", "--json")
    assert result.exit_code == 2 and result.json()["error"]["code"] == "server-unreachable"


def test_bench_imports_no_tensorflow():
    code = ("import sys, tfsconvert.cli, tfsconvert.serving.bench, tfsconvert.serving.loadgen; "
            "assert 'tensorflow' not in sys.modules and 'grpc' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _check_run(run: dict, requests: int) -> None:
    assert RUN_FIELDS <= set(run)
    assert isinstance(run["concurrency"], int) and isinstance(run["qps"], float) and run["qps"] > 0
    assert run["errors"] == 0 and run["requests"] == requests
    assert 0 < run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["max_ms"]


@pytest.mark.slow
def test_bench_json_small_run(fixture_path):
    result = run_cli("bench", fixture_path("savedmodel_base"), "--concurrency", "1,4", "--requests", "200", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert [(r["batching"], r["concurrency"]) for r in data["runs"]] == [(False, 1), (False, 4), (True, 1), (True, 4)]
    for run in data["runs"]:
        _check_run(run, 200)
    params, _, parallelism = tuning.recommend(hardware.detect())  # serving-config's measured defaults
    assert [r["batching_parameters"] for r in data["runs"]] == [None, None, params.to_json(), params.to_json()]
    assert [r["session_parallelism"] for r in data["runs"]] == [None, None, parallelism, parallelism]
    assert isinstance(data["limit_qps"], float) and data["limit_qps"] > 0
    assert data["limit"]["batch_requests"] == 4  # the most requests ever in flight here
    assert data["runs"][3]["vs_unbatched"] == pytest.approx(data["runs"][3]["qps"] / data["runs"][1]["qps"], 1e-2)
    assert data["requests_from"] == "synthesized" and data["ok"] is True
    best = max((r for r in data["runs"] if r["p99_ms"] <= 100), key=lambda r: r["qps"])
    assert data["recommendation"]["qps"] == best["qps"] and data["recommendation"]["text"]


@pytest.mark.slow
def test_bench_batch_timeout_and_thread_candidates_over_grpc(fixture_path, tmp_path):
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 16 } num_batch_threads { value: 1 } max_enqueued_batches { value: 100 }")
    result = run_cli("bench", fixture_path("savedmodel_base"), "--batching", "on", "--batching-parameters-file", params,
                     "--batch-timeout-micros", "0,3000", "--batch-threads", "2,1", "--concurrency", "3", "--requests",
                     "60", "--protocol", "grpc", "--server-flag=--tensorflow_intra_op_parallelism=1", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["server_flags"] == ["--tensorflow_intra_op_parallelism=1"]
    assert "(server flags --tensorflow_intra_op_parallelism=1)" in result.json()["recommendation"]["text"]
    runs = result.json()["runs"]
    assert [(r["batching"], r["batching_parameters"]["batch_timeout_micros"],
             r["batching_parameters"]["num_batch_threads"]) for r in runs] == [(True, 0, 1), (True, 0, 2),
                                                                               (True, 3000, 1), (True, 3000, 2)]
    assert {r["batching_parameters"]["max_batch_size"] for r in runs} == {16}
    for run in runs:
        _check_run(run, 60)
    assert result.json()["limit"]["batch_requests"] == 3


@pytest.mark.slow
def test_bench_session_parallelism_candidates_are_batched_servers(fixture_path):
    result = run_cli("bench", fixture_path("savedmodel_base"), "--session-parallelism", "1,0", "--concurrency", "2",
                     "--requests", "40", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    runs = result.json()["runs"]
    assert [(r["batching"], r["session_parallelism"]) for r in runs] == [(False, None), (True, 0), (True, 1)]
    for run in runs:
        _check_run(run, 40)
    best = result.json()["recommendation"]
    if best["batching"]:
        assert f"--tensorflow_session_parallelism={best['session_parallelism']}" in best["text"]


@pytest.mark.slow
def test_bench_session_parallelism_reaches_the_batched_server_only(fixture_path):
    """With both pool flags given, the session flag makes TF Serving's start-up error: only the batched
    server gets it (the unbatched one is started first, and starts)."""
    flags = ["--server-flag=--tensorflow_intra_op_parallelism=1", "--server-flag=--tensorflow_inter_op_parallelism=1"]
    result = run_cli("bench", fixture_path("savedmodel_base"), "--session-parallelism", "1", "--concurrency", "1",
                     "--requests", "10", *flags, "--json")
    assert result.exit_code != 0
    message = result.json()["error"]["message"]
    assert "(batching on, session_parallelism 1)" in message and "You cannot configure all." in message, message


@pytest.fixture(scope="module")
def serving(fixture_path):
    """`tfsconvert serve` on the savedmodel_base fixture (model name `base`), on free ports."""
    server = started(str(fixture_path("savedmodel_base")), cli=True)
    yield server
    server.terminate()


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["rest", "grpc"])
def test_bench_against_url(serving, scheme):
    url = (f"http://127.0.0.1:{serving.rest_port}/v1/models/base" if scheme == "rest"
           else f"grpc://127.0.0.1:{serving.port}")
    result = run_cli("bench", url, "--model-name", "base", "--concurrency", "2,5", "--requests", "150", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert data["protocol"] == scheme and data["limit_qps"] is None and data["model"] == "base"
    assert [(r["batching"], r["concurrency"]) for r in data["runs"]] == [(None, 2), (None, 5)]
    for run in data["runs"]:
        _check_run(run, 150)


@pytest.mark.slow
def test_bench_url_with_failing_requests_exits_1(serving, tmp_path):
    golden = tmp_path / "golden.jsonl"
    golden.write_text(json.dumps({"id": "wrong-alias", "model_spec": {"signature_name": "serving_default"},
                                  "request": {"inputs": {"feature": [[1.0, 2.0, 3.0, 4.0]]}}, "response": {}}) + "\n")
    result = run_cli("bench", f"http://127.0.0.1:{serving.rest_port}/v1/models/base", "--golden", golden,
                     "--concurrency", "2", "--requests", "20", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    run = result.json()["runs"][0]
    assert run["errors"] == 20 and run["requests"] == 0 and result.json()["ok"] is False
    assert run["error_samples"] == ['HTTP 400: {"error": "Missing named input: features in \'inputs\' object."}']


@pytest.mark.slow
def test_bench_url_refuses_batching_options_and_unknown_model(serving):
    url = f"http://127.0.0.1:{serving.rest_port}/v1/models/"
    for option in ("--batching=on", "--batch-threads=1,2", "--session-parallelism=0,1",
                   "--server-flag=--tensorflow_intra_op_parallelism=1"):
        refused = run_cli("bench", url + "base", option, "--json")
        assert refused.exit_code == 2 and refused.json()["error"]["code"] == "bad-option"
    unknown = run_cli("bench", url + "nope", "--json")
    assert unknown.exit_code == 2 and unknown.json()["error"]["code"] == "model-not-found"


@pytest.mark.slow
def test_bench_server_flags_reach_the_sandboxed_server(fixture_path):
    """All three TensorFlow thread flags at once: TF Serving's start-up error, from our server."""
    flags = ["--server-flag=--tensorflow_intra_op_parallelism=1", "--server-flag=--tensorflow_inter_op_parallelism=1",
             "--server-flag=--tensorflow_session_parallelism=1"]
    result = run_cli("bench", fixture_path("savedmodel_base"), "--batching", "off", "--concurrency", "1",
                     "--requests", "10", *flags, "--json")
    assert result.exit_code != 0
    assert "You cannot configure all." in result.json()["error"]["message"], result.stdout


def _candidates(rows: int, seed: int) -> dict:
    """`rows` candidates for keras_wide_deep_candidates, as its 22 named inputs."""
    import numpy as np

    from fixtures.keras_field_models import CANDIDATE_DENSE, CANDIDATE_FIELDS, CANDIDATE_VOCAB, CANDIDATE_WIDE

    rng = np.random.default_rng(seed)
    columns = {f"c{i:02d}": rng.integers(0, CANDIDATE_VOCAB, (rows, 1)).tolist() for i in range(CANDIDATE_FIELDS)}
    columns["dense"] = rng.standard_normal((rows, CANDIDATE_DENSE)).round(4).tolist()
    columns["wide_ids"] = rng.integers(0, 1000, (rows, CANDIDATE_WIDE)).tolist()
    return columns


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_bench_replays_golden_requests_of_hundreds_of_rows(fixture_path, tmp_path, protocol):
    """A golden file whose requests carry 300 and 1000 candidates of 22 named int64/float inputs, in
    columnar and row form: every request answered, over REST and gRPC."""
    columnar, rows = _candidates(300, 0), _candidates(1000, 1)
    instances = [{alias: values[i] for alias, values in rows.items()} for i in range(1000)]
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps({"id": name, "model_spec": {"signature_name": "serving_default"},
                                            "request": request, "response": {}})
                                for name, request in (("columnar-300", {"inputs": columnar}),
                                                      ("rows-1000", {"instances": instances}))) + "\n")
    result = run_cli("bench", fixture_path("keras_wide_deep_candidates"), "--golden", golden, "--batching", "off",
                     "--concurrency", "1,2", "--requests", "6", "--protocol", protocol, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert data["requests_from"] == str(golden) and data["ok"] is True
    assert [run["concurrency"] for run in data["runs"]] == [1, 2]
    for run in data["runs"]:
        _check_run(run, 6)
