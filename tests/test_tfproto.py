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
