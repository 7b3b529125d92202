"""A converted graph is not held twice: the source's graph is gone when the written model is loaded."""

from __future__ import annotations

import gc
import weakref

import pytest

from tfsconvert.runtimes import tf as tf_runtime
from tfsconvert.convert import frozen_graph


@pytest.mark.parametrize("command", ["saved-model", "onnx"])
def test_source_graph_is_freed_before_the_written_model_loads(cli, fixture_path, tmp_path, monkeypatch, command):
    sources: list = []
    load = frozen_graph.load

    def watched_load(path):
        source = load(path)
        sources.append((source, weakref.ref(source.graph)))
        return source

    seen_at_load: list[bool] = []

    class WatchedSession(tf_runtime.ServingSession):
        def __init__(self, *args, **kwargs):
            gc.collect()
            seen_at_load.append(sources[0][1]() is not None)  # is the source's tf.Graph still alive?
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(frozen_graph, "load", watched_load)
    monkeypatch.setattr(tf_runtime, "ServingSession", WatchedSession)
    if command == "onnx":  # the written model is loaded by tf2onnx: watch the last moment before it
        from tfsconvert.convert import onnx_writer

        convert_onnx = onnx_writer.savedmodel_to_onnx

        def watched_convert(*args, **kwargs):
            gc.collect()
            seen_at_load.append(sources[0][1]() is not None)
            return convert_onnx(*args, **kwargs)

        monkeypatch.setattr(onnx_writer, "savedmodel_to_onnx", watched_convert)
    result = cli(command, fixture_path("frozen_mlp_pb"), "--base-path", tmp_path / "m", "--samples", "4", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.json()["parity"]
    assert seen_at_load == [False]
    source = sources[0][0]
    assert source.graph is None and source.session is None
    source.close()  # closing again (as convert's cleanup does) is harmless
