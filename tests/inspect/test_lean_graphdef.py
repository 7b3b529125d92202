"""lean_graphdef: the full parse of a GraphDef minus large tensor values, without reading them."""

import numpy as np
import pytest

from fixtures import REGISTRY
from tfsconvert import tfproto
from tfsconvert.errors import InputError
from tfsconvert.inspect import graphdef, lean_graphdef

FROZEN_PB = [f.name for f in REGISTRY.values() if f.format == "frozen-graph" and not f.lazy
             and not f.name.endswith("pbtxt")]
SAVEDMODELS = ["savedmodel_base", "keras_export_savedmodel", "serving_examples", "ctr_ranker",
               "validate_breaking_dtype"]


def _without_tensor_values(parsed, limit: int):
    """The full parse with the values of every attr tensor whose encoding exceeds `limit` cleared."""
    if hasattr(parsed, "meta_graphs"):  # a SavedModel
        for meta_graph in parsed.meta_graphs:
            _without_tensor_values(meta_graph.graph_def, limit)
        return parsed
    nodes = [*parsed.node, *(n for f in parsed.library.function for n in f.node_def)]
    for node in nodes:
        for value in node.attr.values():
            if value.HasField("tensor") and value.tensor.ByteSize() > limit:
                kept = (value.tensor.dtype, value.tensor.version_number)
                shape = value.tensor.tensor_shape.SerializeToString()
                value.tensor.Clear()
                value.tensor.dtype, value.tensor.version_number = kept
                value.tensor.tensor_shape.ParseFromString(shape)
    return parsed


@pytest.mark.parametrize("name", FROZEN_PB)
def test_fixture_reads_as_the_full_parse(fixture_path, name):
    path = fixture_path(name)
    full = tfproto.parse_binary("GraphDef", path.read_bytes())
    assert len(full.node) > 0
    expected = _without_tensor_values(full, lean_graphdef.LIMIT)  # only tensors over LIMIT lose their values
    assert tfproto.parse_binary("GraphDef", lean_graphdef.read(path)) == expected


@pytest.mark.parametrize("name", FROZEN_PB)
def test_fixture_with_every_tensor_skipped(fixture_path, name, monkeypatch):
    """LIMIT 0 walks every node and drops every tensor value: the rest is the full parse, field for field."""
    path = fixture_path(name)
    # What inspect shows is read from small tensors only (optional inputs' defaults have at most 16
    # elements), so at the real LIMIT it equals the full parse's, defaults included.
    expected_details = graphdef.graph_io_details(tfproto.parse_binary("GraphDef", path.read_bytes()))
    assert graphdef.graph_io_details(graphdef.read_graphdef(path)) == expected_details
    monkeypatch.setattr(lean_graphdef, "LIMIT", 0)
    lean = tfproto.parse_binary("GraphDef", lean_graphdef.read(path))
    assert lean == _without_tensor_values(tfproto.parse_binary("GraphDef", path.read_bytes()), 0)


@pytest.mark.parametrize("name", SAVEDMODELS)
@pytest.mark.parametrize("limit", [lean_graphdef.LIMIT, 0])
def test_savedmodel_reads_as_the_full_parse(fixture_path, name, limit, monkeypatch):
    pb = next(fixture_path(name).rglob("saved_model.pb"))
    monkeypatch.setattr(lean_graphdef, "LIMIT", limit)
    data = lean_graphdef.read(pb, lean_graphdef.SAVED_MODEL)
    full = tfproto.parse_binary("SavedModel", pb.read_bytes())
    assert len(full.meta_graphs[0].graph_def.node) > 0
    assert tfproto.parse_binary("SavedModel", data) == _without_tensor_values(full, limit)
    assert len(data) < pb.stat().st_size or limit > 0  # every fixture holds some tensor value


@pytest.mark.parametrize("limit", [lean_graphdef.LIMIT, 0])
def test_checkpoint_meta_reads_as_the_full_parse(fixture_path, limit, monkeypatch):
    meta = next(fixture_path("tf1_checkpoint").parent.glob("*.meta"))
    monkeypatch.setattr(lean_graphdef, "LIMIT", limit)
    lean = tfproto.parse_binary("MetaGraphDef", lean_graphdef.read(meta, lean_graphdef.META_GRAPH))
    full = tfproto.parse_binary("MetaGraphDef", meta.read_bytes())
    assert len(full.graph_def.node) > 0
    _without_tensor_values(full.graph_def, limit)
    assert lean == full


def _big_graph(tmp_path):
    """features float[-1,512] -> MatMul with a 1 MiB Const weight -> probabilities, written by tfproto."""
    graph = tfproto.message_class("GraphDef")()
    x = graph.node.add(name="features", op="Placeholder")
    x.attr["dtype"].type = 1
    x.attr["shape"].shape.dim.add(size=-1)
    x.attr["shape"].shape.dim.add(size=512)
    w = graph.node.add(name="kernel", op="Const")
    w.attr["dtype"].type = 1
    w.attr["value"].tensor.dtype = 1
    w.attr["value"].tensor.tensor_shape.dim.add(size=512)
    w.attr["value"].tensor.tensor_shape.dim.add(size=512)
    w.attr["value"].tensor.tensor_content = np.arange(512 * 512, dtype="<f4").tobytes()
    graph.node.add(name="probabilities", op="MatMul", input=["features", "kernel"]).attr["T"].type = 1
    graph.versions.producer = 1882
    path = tmp_path / "big.pb"
    path.write_bytes(graph.SerializeToString())
    return path, graph


def test_large_tensor_values_are_not_read(tmp_path):
    path, graph = _big_graph(tmp_path)
    lean = lean_graphdef.read(path)
    assert len(lean) < 1000 < 2**20 < path.stat().st_size
    assert tfproto.parse_binary("GraphDef", lean) == _without_tensor_values(graph, lean_graphdef.LIMIT)
    details = graphdef.graph_io_details(graphdef.read_graphdef(path))
    assert details == graphdef.graph_io_details(graph)
    assert details["inputs"]["features"]["shape"] == [-1, 512] and list(details["outputs"]) == ["probabilities"]


def test_truncated_big_graph_is_still_a_corrupt_file(tmp_path):
    path, _ = _big_graph(tmp_path)
    path.write_bytes(path.read_bytes()[:300_000])
    with pytest.raises(InputError) as error:
        graphdef.read_graphdef(path)
    assert error.value.code == "corrupt-model-file" and "corrupt or truncated protobuf" in str(error.value)


def test_random_bytes_are_left_to_the_real_parser(fixture_path):
    path = fixture_path("bad_random_pb")
    assert lean_graphdef.read(path) == path.read_bytes()
