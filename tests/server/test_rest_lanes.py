"""REST lanes: the common predict body read in C (_dense_json.c, _http.c) must be answered exactly
as the general path (orjson, rest_json, RestApi.route) answers the same body, and every body the
lane does not take must still reach the general path."""

from __future__ import annotations

import gzip
import http.client
import json
import random
import struct
import threading

import numpy as np
import pytest

from conftest import converted
from harness import LaneReader
from tfsconvert.server import backends, http_server, rest
from tfsconvert.server.config import ModelConfig
from tfsconvert.server.manager import Manager

pytestmark = pytest.mark.usefixtures("pure")  # the C transport and its pure-Python twin

# ---------------------------------------------------------------------------------------------
# Reading bodies


@pytest.fixture(scope="module")
def lane(pure):
    reader = LaneReader()
    yield reader
    reader.close()


def _literal(rng: random.Random) -> str:
    """A JSON number as serializers write them, and the corner cases of each conversion."""
    kind = rng.randrange(7)
    if kind == 0:
        return repr(rng.uniform(-1e3, 1e3))  # 16-17 significant digits
    if kind == 1:
        return f"{np.float32(rng.gauss(0, 1)):.9g}"  # TF Serving's and golden files' float32 text
    if kind == 2:
        return str(rng.randint(-10 ** 19 + 1, 10 ** 19 - 1))  # ints up to 19 digits
    if kind == 3:
        value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # any finite double
        return repr(value) if np.isfinite(value) else "1.5"
    if kind == 4:
        return f"{rng.randint(1, 10 ** rng.randint(1, 19))}e{rng.randint(-40, 40)}"
    if kind == 5:
        return f"-{rng.randint(0, 99)}.{rng.randint(0, 10 ** 22)}E+{rng.randint(0, 30)}"  # over 19 digits
    return rng.choice(["0", "-0", "-0.0", "0e5", "1e400", "-1e400", "1e-400", "9007199254740993.0",
                       "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308", "0.1", "1E5", "1e+5",
                       "9999999999999999999", "-9223372036854775808", "0.30000000000000004", "123456789e-27"])


def _python_value(literal: str) -> float:
    """What the general path makes of the literal: an int through float(int), else float(text)."""
    return float(literal) if any(ch in literal for ch in ".eE") else float(int(literal))


def test_numbers_are_read_as_python_reads_them(lane):
    rng = random.Random(6)
    checked = 0
    for _ in range(3000):
        literals = [_literal(rng) for _ in range(rng.randint(1, 12))]
        read = lane.read(f'{{"instances": [[{", ".join(literals)}]]}}'.encode())
        values = [_python_value(literal) for literal in literals]
        if any(np.isinf(values)):  # beyond a double: "Number too big", which the general path answers
            assert read is None, literals
            continue
        assert read is not None, literals
        got = np.frombuffer(read[3])
        assert got.tobytes() == np.array(values).tobytes(), [  # bit for bit: -0.0 and all
            (literal, a, b) for literal, a, b in zip(literals, got, values) if struct.pack("d", a) != struct.pack("d", b)]
        checked += len(literals)
    assert checked > 12000


@pytest.mark.parametrize("body, expected", [
    (b'{"instances": [[1, 2], [3, 4.5]]}', (True, None, None, [1, 2, 3, 4.5], (2, 2))),
    (b' {"signature_name" : "s" , "inputs": {"x": [[1.5]]}}\n', (False, "s", "x", [1.5], (1, 1))),
    (b'{"inputs": [1, -0], "signature_name": ""}', (False, "", None, [1, 0], (2,))),
    (b'{"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}', (True, None, None, list(range(1, 9)), (2, 2, 2))),
])
def test_dense_bodies(lane, body, expected):
    rows, signature, alias, values, shape = lane.read(body)
    assert (rows, signature, alias, np.frombuffer(values).tolist(), shape) == expected


@pytest.mark.parametrize("body", [
    b'{"instances": [1, 2]}',  # rows that are not lists: the general path
    b'{"instances": [[1, 2], [3]]}', b'{"instances": [[1, 2], [3, [4]]]}', b'{"instances": [[]]}',
    b'{"instances": [[1]]} x', b'{"instances": [[01]]}', b'{"instances": [[1.]]}', b'{"instances": [[-]]}',
    b'{"instances": [[1e]]}', b'{"instances": [[true]]}', b'{"instances": [[NaN]]}', b'{"instances": [["1"]]}',
    b'{"instances": [[12345678901234567890]]}',  # an int beyond 64 bits
    b'{"instances": [[1]], "instances": [[2]]}', b'{"instances": [[1]], "inputs": [[2]]}',
    b'{"inputs": {"a": [1], "b": [2]}}', b'{"inputs": {"a": 1}}', b'{"instances": [{"x": [1]}]}',
    b'{"signature_name": "a\\u0062", "instances": [[1]]}', b'{"signature_name": 1, "instances": [[1]]}',
    b'{"instances": [[1]], "extra": 1}', b'{}', b'[]', b'', b'{"instances": [[1]]',
])
def test_other_bodies_are_left_to_the_general_path(lane, body):
    assert lane.read(body) is None


# ---------------------------------------------------------------------------------------------
# Served: the lane's answer against the general path's for the same body


class _CountingApi(rest.RestApi):
    """The real API, counting what the lane made of the bodies it read."""

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.taken = self.declined = 0

    def dense_predict(self, *args):
        run = super().dense_predict(*args)
        if run is None:
            self.declined += 1
        else:
            self.taken += 1
        return run


@pytest.fixture(scope="module")
def lane_server(fixture_path, tmp_path_factory, pure):
    """mlp_onnx (features: float [-1, 4]) in ONNX Runtime behind the real transport and API."""
    base = converted(fixture_path, tmp_path_factory, "onnx", "frozen_mlp_pb")[1]
    manager = Manager([ModelConfig("mlp", str(base))], lambda path: backends.load(path, ("serve",)), 0, 0,
                      threading.Event())
    assert manager.start(1) == []
    api = _CountingApi(manager)
    server = http_server.start("127.0.0.1", 0, api, workers=2)
    yield server, api
    server.shutdown()
    manager.close()


def _post(port: int, body: bytes, gzipped: bool = False) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    connection.request("POST", "/v1/models/mlp:predict", body=gzip.compress(body) if gzipped else body,
                       headers=headers)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


ROW = [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("document, taken, status", [
    ({"instances": [ROW]}, True, 200),
    ({"instances": [[1.5, -2e-3, 3, 4], [0.1, 0.2, 0.3, 1e5]]}, True, 200),
    ({"signature_name": "serving_default", "inputs": {"features": [ROW, ROW]}}, True, 200),
    ({"inputs": [ROW]}, True, 200),
    ('{"instances": [[-0, -0.0, 12345678901234567, 0.30000000000000004]]}', True, 200),
    ('{"instances": [[1e-30, 123456789012345678901234e-3, 7, 8]]}', True, 200),  # numbers Python converts
    ({"instances": [[1.0, 2.0, 3.0]]}, True, 400),  # the wrong width: the runtime's error, either way
    ({"inputs": {"feature": [ROW]}}, False, 400),  # not the input's name: the general path's error
    ({"signature_name": "nope", "instances": [ROW]}, False, 400),
    # Left to the general path by the transport itself (None): a number beyond a double, a repeated key.
    ('{"instances": [[1e400, 2, 3, 4]]}', None, 400),
    ('{"instances": [[1, 2, 3, 4]], "instances": [[5, 6, 7, 8], [1, 2, 3, 4]]}', None, 200),
])
def test_lane_answers_as_the_general_path_does(lane_server, document, taken, status):
    server, api = lane_server
    port = server.server_address[1]
    body = (document if isinstance(document, str) else json.dumps(document)).encode()
    _post(port, body)  # the first request to a path opens its lane
    before = api.taken, api.declined
    laned = _post(port, body)
    general = _post(port, body, gzipped=True)  # a gzip body never takes a lane
    assert laned == general and laned[0] == status, laned
    assert (api.taken - before[0], api.declined - before[1]) == {True: (1, 0), False: (0, 1), None: (0, 0)}[taken]
