"""A PMML artifact from `tfsconvert pmml`, served by `tfsconvert serve` with each engine (JPMML-Evaluator
in-process, the default; pypmml's JVM as a child): its golden requests replay green, and SIGTERM leaves
no child process behind."""

from __future__ import annotations

import json
import os

import pytest
import requests

from conftest import converted
from harness import started
from tfsconvert import golden
from tfsconvert.compare import compare
from tfsconvert.model import TensorSpec
from tfsconvert.rest_codec import response_tensors

pytestmark = pytest.mark.slow  # a PMML conversion and two JVM starts


@pytest.fixture(scope="module")
def base(fixture_path, tmp_path_factory):
    return converted(fixture_path, tmp_path_factory, "pmml", "sklearn_pipeline")[1]


@pytest.fixture(scope="module", params=["jpmml", "pypmml"])
def server(base, request):
    engine = ["--pmml-evaluator", request.param] if request.param != "jpmml" else []  # jpmml: the default
    process = started(str(base), "--name", "pipeline", *engine, "--max_num_load_retries=0", cli=True)
    process.engine = request.param
    yield process
    process.terminate()


def test_pmml_golden_requests_replay_green(server, base):
    records = golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")
    specs = {"label": TensorSpec("DT_STRING", None)}
    for record in records:
        response = requests.post(server.url("/v1/models/pipeline:predict"), data=json.dumps(record.request),
                                 timeout=30)
        assert response.status_code == 200, response.text
        expected = response_tensors(record.response, specs)
        diffs = compare(expected, response_tensors(response.json(), specs), record.atol, record.rtol)
        assert len(diffs) == 4 and all(d.ok for d in diffs), (record.id, [d.to_json() for d in diffs])


def test_pmml_columnar_batch_and_metadata(server):
    body = {"inputs": {"sepal_length": [5.1, 6.7], "sepal_width": [3.5, 3.0], "petal_length": [1.4, 5.2],
                       "color": ["red", "blue"]}}
    outputs = requests.post(server.url("/v1/models/pipeline:predict"), data=json.dumps(body), timeout=30).json()[
        "outputs"]
    assert len(outputs["label"]) == 2 and all(isinstance(label, str) for label in outputs["label"])
    totals = [sum(outputs[f"probability({c})"][i] for c in ("setosa", "versicolor", "virginica")) for i in range(2)]
    assert totals == pytest.approx([1.0, 1.0], abs=1e-9)
    signature = requests.get(server.url("/v1/models/pipeline/metadata"), timeout=30).json()["metadata"][
        "signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["sepal_length"]["dtype"] == "DT_DOUBLE"
    assert signature["outputs"]["label"]["dtype"] == "DT_STRING"


def test_sigterm_exits_0_and_stops_the_jvm(server):
    children = server.children()
    assert bool(children) == (server.engine == "pypmml"), children  # JPype's JVM lives in the server process
    assert server.terminate() == 0
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
