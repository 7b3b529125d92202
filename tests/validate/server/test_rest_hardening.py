"""REST front end without a model process: bodies that used to crash a handler (500) get 400, and
replies leave without Nagle's delay (defects found by bench/serve_load.py and bench/validate_speed.py)."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from tfsconvert.validate.server import http_server, rest, rest_json
from tfsconvert.validate.server.status import ServingError


TOO_DEEP = "JSON Parse error: The document is nested too deeply"


@pytest.mark.parametrize("body, message", [
    (b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", TOO_DEEP),
    (b'{"inputs": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}", TOO_DEEP),
    (b'{"inputs": [[' + b"1" * 5000 + b", 2]]}",
     "JSON Parse error: Number too big to be stored in double. at offset: 13"),
])
def test_bodies_beyond_pythons_parser_limits_are_400(body, message):
    with pytest.raises(ServingError) as raised:
        rest_json.parse_body(body)
    assert (raised.value.http_status, raised.value.message) == (400, message)


@pytest.mark.parametrize("value, message", [
    (json.loads("[" * 500 + "1" + "]" * 500),
     "JSON Value: lists nested 500 levels deep; a tensor has at most 254 dimensions"),
    (json.loads("[" * 100 + "1" + "]" * 100), "maximum supported dimension for an ndarray"),
    ([[int("1" * 400), 1.0]], "a value is out of range for DT_FLOAT"),
])
def test_tensors_numpy_cannot_hold_are_400(value, message):
    with pytest.raises(ServingError) as raised:
        rest_json.tensor(value, "DT_FLOAT")
    assert raised.value.http_status == 400 and message in raised.value.message


class _Api:
    def route(self, method, target, body):
        return 200, b'{"outputs": [[0.5]]}', rest.JSON_TYPE


def test_keep_alive_replies_are_sent_with_tcp_nodelay(monkeypatch):
    """With Nagle on, a reply could wait ~40 ms for the client's delayed ACK."""
    nodelay = []
    made = http_server._Connection.connection_made

    def recording(self, transport):
        made(self, transport)
        nodelay.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(http_server._Connection, "connection_made", recording)
    server = http_server.start("127.0.0.1", 0, _Api(), workers=1)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        for _ in range(3):
            connection.request("POST", "/v1/models/m:predict", body=b"{}")
            assert connection.getresponse().read() == b'{"outputs": [[0.5]]}'
        connection.close()
    finally:
        server.shutdown()
    assert nodelay == [1]  # one keep-alive connection, Nagle off
