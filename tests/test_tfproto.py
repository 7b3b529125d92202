"""Our TF message declarations read real TensorFlow files exactly as TensorFlow does."""

from tfsconvert import tfproto


def test_savedmodel_matches_tensorflow(fixture_path):
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    for name in ("savedmodel_base", "keras_export_savedmodel"):
        root = fixture_path(name)
        pb = root / "1" / "saved_model.pb" if (root / "1").is_dir() else root / "saved_model.pb"
        data = pb.read_bytes()
        ref, ours = saved_model_pb2.SavedModel.FromString(data), tfproto.parse_binary("SavedModel", data)
        assert len(ref.meta_graphs) == len(ours.meta_graphs) > 0
        for r, o in zip(ref.meta_graphs, ours.meta_graphs):
            assert list(r.meta_info_def.tags) == list(o.meta_info_def.tags)
            assert [n.name for n in r.graph_def.node] == [n.name for n in o.graph_def.node]
            assert [f.signature.name for f in r.graph_def.library.function] == \
                   [f.signature.name for f in o.graph_def.library.function]
            assert sorted(r.signature_def) == sorted(o.signature_def)
            for key, sig in r.signature_def.items():
                mine = o.signature_def[key]
                assert sig.method_name == mine.method_name
                for ref_map, our_map in ((sig.inputs, mine.inputs), (sig.outputs, mine.outputs)):
                    for alias, info in ref_map.items():
                        assert our_map[alias].name == info.name
                        assert tfproto.dtype_name(our_map[alias].dtype) == types_pb2.DataType.Name(info.dtype)
                        expected = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
                        assert tfproto.shape_list(our_map[alias].tensor_shape) == expected


def test_text_graphdef_matches_binary(fixture_path):
    text = tfproto.parse_text("GraphDef", fixture_path("frozen_mlp_pbtxt").read_text())
    binary = tfproto.parse_binary("GraphDef", fixture_path("frozen_mlp_pb").read_bytes())
    assert [(n.name, n.op, list(n.input)) for n in text.node] == [(n.name, n.op, list(n.input)) for n in binary.node]


def test_dtype_names():
    assert tfproto.dtype_name(1) == "DT_FLOAT"
    assert tfproto.dtype_name(9) == "DT_INT64"
    assert tfproto.dtype_name(101) == "DT_FLOAT_REF"
    assert tfproto.dtype_name(999) == "DT_UNKNOWN_999"


# Every file TensorFlow reads whose messages we also declare, per fixture format.
_TF_FILES = {"frozen-graph": "GraphDef", "tf1-checkpoint": "MetaGraphDef", "savedmodel": "SavedModel",
             "savedmodel-base-path": "SavedModel"}


def _tf_message_class(name: str):
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    return {"GraphDef": graph_pb2.GraphDef, "MetaGraphDef": meta_graph_pb2.MetaGraphDef,
            "SavedModel": saved_model_pb2.SavedModel}[name]


def _fixture_files(fixture_path):
    """(fixture, file, message name) for every TensorFlow file of every readable fixture."""
    from fixtures import REGISTRY

    for fx in REGISTRY.values():
        if fx.bad_input or fx.lazy or fx.format not in _TF_FILES:
            continue
        path = fixture_path(fx.name)
        if fx.format == "frozen-graph":
            yield fx.name, path, "GraphDef"
        elif fx.format == "tf1-checkpoint":
            yield fx.name, path.with_name(path.name + ".meta"), "MetaGraphDef"
        else:
            for pb in sorted(path.rglob("saved_model.pb")):
                yield fx.name, pb, "SavedModel"


def _graphs(message, name: str):
    """Every GraphDef inside a parsed message."""
    if name == "GraphDef":
        return [message]
    if name == "MetaGraphDef":
        return [message.graph_def]
    return [meta_graph.graph_def for meta_graph in message.meta_graphs]


def _node_defs(graph_def):
    yield from graph_def.node
    for function in graph_def.library.function:
        yield from function.node_def


def _attr_kinds(value) -> set[str]:
    """Which zero-like values an AttrValue holds: the ones a reader without oneof presence loses."""
    which = value.WhichOneof("value")
    kinds = set()
    if which in ("b", "i", "f", "s") and not getattr(value, which):
        kinds.add(f"{which}-zero")
    if which == "list" and not value.list.ListFields():
        kinds.add("empty-list")
    shapes = {"shape": [value.shape], "list": list(value.list.shape), "tensor": [value.tensor.tensor_shape]}
    for shape in shapes.get(which, []):
        if not shape.dim and not shape.unknown_rank:
            kinds.add("scalar-shape")
        if any(d.size == 0 for d in shape.dim):
            kinds.add("zero-sized-dim")
    return kinds


def test_every_fixture_round_trips_through_our_reader_as_tensorflow_parses_it(fixture_path):
    """Parsed by our declarations and written back, every fixture file is what TensorFlow parses,
    field by field; every attr has the same `oneof` member set to the same value."""
    from google.protobuf import text_format

    seen_kinds: set[str] = set()
    checked = 0
    for fixture, path, name in _fixture_files(fixture_path):
        tf_class = _tf_message_class(name)
        if path.suffix == ".pbtxt":
            reference = text_format.Parse(path.read_text(), tf_class())
            ours = tfproto.parse_text(name, path.read_text())
        else:
            data = path.read_bytes()
            try:
                reference = tf_class.FromString(data)
            except Exception:  # a deliberately broken fixture: TensorFlow cannot read it either
                continue
            ours = tfproto.parse_binary(name, data)
        round_trip = tf_class.FromString(ours.SerializeToString())
        assert round_trip == reference, f"{fixture}: {path}"
        assert round_trip.SerializeToString(deterministic=True) == reference.SerializeToString(deterministic=True)
        for ref_graph, our_graph in zip(_graphs(reference, name), _graphs(ours, name), strict=True):
            for ref_node, our_node in zip(_node_defs(ref_graph), _node_defs(our_graph), strict=True):
                assert sorted(ref_node.attr) == sorted(our_node.attr), (fixture, ref_node.name)
                for key, ref_value in ref_node.attr.items():
                    which = ref_value.WhichOneof("value")
                    assert our_node.attr[key].WhichOneof("value") == which, (fixture, ref_node.name, key)
                    assert our_node.attr[key].SerializeToString() == ref_value.SerializeToString()
                    seen_kinds |= _attr_kinds(ref_value)
        checked += 1
    assert checked >= 15
    # The fixtures hold every kind of value that a reader without presence would drop.
    assert seen_kinds >= {"b-zero", "i-zero", "f-zero", "s-zero", "empty-list", "scalar-shape", "zero-sized-dim"}, \
        seen_kinds


def test_zero_valued_attrs_are_set_in_our_parse(fixture_path):
    """The trap graph's inference-mode batch norm, alpha 0 and empty rewrite are read as written."""
    numeric = tfproto.parse_binary("GraphDef", fixture_path("frozen_numeric_traps_pb").read_bytes())
    strings = tfproto.parse_binary("GraphDef", fixture_path("frozen_string_traps_pb").read_bytes())
    ops = {n.op: n for n in (*numeric.node, *strings.node)}
    assert ops["FusedBatchNormV3"].attr["is_training"].WhichOneof("value") == "b"
    assert ops["FusedBatchNormV3"].attr["is_training"].b is False
    assert ops["LeakyRelu"].attr["alpha"].WhichOneof("value") == "f" and ops["LeakyRelu"].attr["alpha"].f == 0.0
    assert ops["StaticRegexReplace"].attr["rewrite"].WhichOneof("value") == "s"
    assert ops["StringSplit"].attr["skip_empty"].WhichOneof("value") == "b"
    message = tfproto.message_class("AttrValue")(b=False)
    assert message.SerializeToString() == b"\x28\x00"  # field 5, value 0: present, as TensorFlow writes it
def test_example_and_classify_regress_messages_match_tensorflow_serving():
    """tf.Example and the Classify/Regress messages round-trip through our declarations byte for byte."""
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

    example = example_pb2.Example()
    example.features.feature["age"].float_list.value.extend([31.5, -0.25])
    example.features.feature["visits"].int64_list.value.extend([0, 7, -3])
    example.features.feature["tags"].bytes_list.value.extend([b"news", b"\xff"])
    example.features.feature["empty"].SetInParent()
    examples = input_pb2.Input(example_list=input_pb2.ExampleList(examples=[example, example_pb2.Example()]))
    classify = classification_pb2.ClassificationRequest(input=examples)
    classify.model_spec.name, classify.model_spec.signature_name = "m", "classification"
    regress = regression_pb2.RegressionRequest(model_spec=classify.model_spec, input=examples)
    answers = {
        "ClassificationResponse": classification_pb2.ClassificationResponse(
            result=classification_pb2.ClassificationResult(classifications=[classification_pb2.Classifications(
                classes=[classification_pb2.Class(label="0", score=0.25), classification_pb2.Class(label="1")])])),
        "RegressionResponse": regression_pb2.RegressionResponse(
            result=regression_pb2.RegressionResult(regressions=[regression_pb2.Regression(value=0.0),
                                                                regression_pb2.Regression(value=2.5)])),
    }
    messages = {"Example": example, "ClassificationRequest": classify, "RegressionRequest": regress, **answers}
    for name, message in messages.items():
        data = message.SerializeToString(deterministic=True)
        assert tfproto.parse_binary(name, data).SerializeToString(deterministic=True) == data, name
    ours = tfproto.parse_binary("Example", example.SerializeToString())
    assert ours.features.feature["empty"].WhichOneof("kind") is None
    assert list(ours.features.feature["age"].float_list.value) == [31.5, -0.25]


def test_serving_api_messages_match_tensorflow_serving():
    """What the embedded server sends and receives over gRPC (tfsconvert/server/grpc_service.py) round-trips
    through our declarations byte for byte: TF Serving's clients and ours see the same wire format."""
    from tensorflow.core.framework import tensor_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, predict_pb2,
                                         prediction_log_pb2)

    import tensorflow as tf

    predict = predict_pb2.PredictRequest(output_filter=["probabilities"])
    predict.model_spec.name, predict.model_spec.signature_name = "m", "serving_default"
    predict.model_spec.version.value = 3
    predict.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.5, -2.0]], dtype=tf.float32))
    predict.inputs["s"].CopyFrom(tf.make_tensor_proto([b"a", b"\xff"]))
    response = predict_pb2.PredictResponse(model_spec=predict.model_spec)
    response.outputs["y"].CopyFrom(tensor_pb2.TensorProto(dtype=1, float_val=[0.25, 0.75]))
    response.outputs["y"].tensor_shape.dim.add(size=2)
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["x"].name, signature.inputs["x"].dtype = "x:0", 1
    signature.inputs["x"].tensor_shape.dim.add(size=-1)
    signature.outputs["y"].name, signature.outputs["y"].dtype = "y:0", 1
    metadata = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=predict.model_spec)
    metadata.metadata["signature_def"].Pack(get_model_metadata_pb2.SignatureDefMap(signature_def={"s": signature}))
    status = get_model_status_pb2.GetModelStatusResponse()
    entry = status.model_version_status.add(version=3, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    entry.status.error_code, entry.status.error_message = 5, "not found"
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=predict,
                                                                                      response=response))
    messages = {"PredictRequest": predict, "PredictResponse": response, "SignatureDef": signature,
                "GetModelMetadataRequest": get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=predict.model_spec, metadata_field=["signature_def"]),
                "GetModelMetadataResponse": metadata, "GetModelStatusResponse": status,
                "GetModelStatusRequest": get_model_status_pb2.GetModelStatusRequest(model_spec=predict.model_spec),
                "PredictionLog": log}
    for name, message in messages.items():
        data = message.SerializeToString(deterministic=True)
        ours = tfproto.parse_binary(name, data)
        if name != "GetModelMetadataResponse":  # (its Any's type is not in our pool; checked below)
            assert _json(ours) == _json(message), name  # every field declared, as the REST front end prints it
        assert ours.SerializeToString(deterministic=True) == data, name
        assert type(message).FromString(ours.SerializeToString()) == message, name
    ours = tfproto.parse_binary("GetModelStatusResponse", status.SerializeToString())
    assert ours.model_version_status[0].state == tfproto.enum_value("ModelVersionStatus", "state", "AVAILABLE")
    # The server packs the SignatureDefMap by hand: the Any's type is TF Serving's, as its clients unpack it.
    from tfsconvert.server.responses import metadata_response

    packed = metadata_response("m", 3, {"s": signature}).SerializeToString()
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    assert get_model_metadata_pb2.GetModelMetadataResponse.FromString(packed).metadata["signature_def"].Unpack(unpacked)
    assert unpacked.signature_def["s"] == signature


def _json(message) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)
