"""inspect of SavedModels, base paths, frozen graphs and checkpoints: exact values from real files."""

import shutil

from tfsconvert.inspect import inspect_path


def codes(desc, severity=None):
    return [d.code for d in desc.diagnostics if severity is None or d.severity == severity]


def test_good_base_path(fixture_path):
    desc = inspect_path(fixture_path("savedmodel_base")).to_json()
    assert desc["format"] == "savedmodel-base-path"
    assert [v["version"] for v in desc["versions"]] == [2, 1]
    assert desc["versions"][0]["details"]["served_by_default"] is True
    latest = desc["versions"][0]
    assert latest["tags"] == [["serve"]]
    sig = latest["signatures"]["serving_default"]
    assert sig["method"] == "tensorflow/serving/predict"
    assert sig["inputs"]["features"]["dtype"] == "DT_FLOAT"
    assert sig["inputs"]["features"]["shape"] == [-1, 4]
    assert sig["inputs"]["features"]["name"].startswith("serving_default_features")
    assert set(sig["outputs"]) == {"probabilities"}
    assert sig["outputs"]["probabilities"]["shape"] == [-1, 3]
    assert desc["diagnostics"] == []


def test_keras_export_has_generic_names(fixture_path):
    desc = inspect_path(fixture_path("keras_export_savedmodel"))
    sig = desc.versions[0].signatures["serving_default"]
    assert "output_0" in sig.outputs
    unnamed = [d for d in desc.diagnostics if d.code == "unnamed-signature-io"]
    assert unnamed and "output_0" in unnamed[0].message
    assert "--output NAME=output_0" in unnamed[0].hint
    # The export sits in a non-numeric directory: TF Serving would find no version.
    assert "no-version-directory" in codes(desc, "error")


def test_frozen_graph_as_savedmodel(fixture_path):
    desc = inspect_path(fixture_path("broken_frozen_as_savedmodel"))
    [f] = [d for d in desc.diagnostics if d.code == "not-a-savedmodel"]
    assert "frozen GraphDef" in f.message and "Could not find meta graph def matching supplied tags" in f.message


def test_nonnumeric_versions_get_rename_hints(fixture_path):
    base = fixture_path("broken_nonnumeric_versions")
    desc = inspect_path(base)
    assert desc.versions == []
    assert codes(desc)[0] == "no-version-directory"
    hints = sorted(d.hint for d in desc.diagnostics if d.code == "bad-version-name")
    assert hints == sorted(f"mv {base / old} {base / new}" for old, new in [("1.0", "1"), ("latest", "2"), ("v1", "3")])
    assert {i["name"] for i in desc.to_json()["ignored"]} == {"v1", "1.0", "latest"}


def test_duplicate_versions_load_the_last(fixture_path):
    desc = inspect_path(fixture_path("broken_duplicate_versions"))
    [dup] = [d for d in desc.diagnostics if d.code == "duplicate-version"]
    assert "Version 1 will be loaded from 1, 01 will be ignored." in dup.message
    assert [v.path.rsplit("/", 1)[1] for v in desc.versions] == ["1"]


def test_empty_version_dir(fixture_path):
    desc = inspect_path(fixture_path("broken_empty_version"))
    [f] = [d for d in desc.diagnostics if d.code == "not-a-savedmodel"]
    assert "does not appear to contain a SavedModel bundle" in f.message and f.severity == "error"


def test_missing_serve_tag_lists_found_tags(fixture_path):
    desc = inspect_path(fixture_path("broken_no_serve_tag"))
    [f] = [d for d in desc.diagnostics if d.code == "missing-serve-tag"]
    assert "{train}" in f.message
    assert desc.versions[0].tags == [["train"]]


def test_missing_default_signature_names_the_others(fixture_path):
    desc = inspect_path(fixture_path("broken_no_default_signature"))
    [f] = [d for d in desc.diagnostics if d.code == "missing-default-signature"]
    assert "predict" in f.message and '"signature_name": "predict"' in f.hint
    assert list(desc.versions[0].signatures) == ["predict"]


def test_truncated_savedmodel(fixture_path):
    desc = inspect_path(fixture_path("broken_truncated_savedmodel"))
    [f] = [d for d in desc.diagnostics if d.code == "corrupt-model-file"]
    assert "Can't parse" in f.message and f.path.endswith("1/saved_model.pb")


def test_truncated_savedmodel_given_directly_is_exit_2(cli, fixture_path):
    result = cli("inspect", fixture_path("broken_truncated_savedmodel") / "1")
    assert result.exit_code == 2 and "corrupt-model-file" in result.stderr


def test_missing_variable_shard(fixture_path):
    desc = inspect_path(fixture_path("broken_missing_variable_data"))
    [f] = [d for d in desc.diagnostics if d.code == "missing-variables"]
    assert "variables.data-00000-of-00001" in f.message


def test_graph_with_variables_but_no_variables_dir(fixture_path, tmp_path):
    version = tmp_path / "base" / "1"
    shutil.copytree(fixture_path("savedmodel_base") / "1", version)
    shutil.rmtree(version / "variables")
    desc = inspect_path(tmp_path / "base")
    [f] = [d for d in desc.diagnostics if d.code == "missing-variables"]
    assert "no checkpoints were restored" in f.message


def test_regular_file_named_like_a_version(fixture_path, tmp_path):
    shutil.copytree(fixture_path("savedmodel_base") / "1", tmp_path / "1")
    (tmp_path / "3").write_text("not a model")
    desc = inspect_path(tmp_path)
    assert [v.version for v in desc.versions] == [3, 1]
    assert [d.path for d in desc.diagnostics if d.code == "not-a-savedmodel"] == [str(tmp_path / "3")]


def test_odd_but_valid_version_names(fixture_path, tmp_path):
    shutil.copytree(fixture_path("savedmodel_base") / "1", tmp_path / "007")
    desc = inspect_path(tmp_path)
    assert [v.version for v in desc.versions] == [7]
    [f] = desc.diagnostics
    assert f.code == "bad-version-name" and f.hint == f"mv '{tmp_path / '007'}' {tmp_path / '7'}"


def test_frozen_graph_candidates(fixture_path):
    for name in ("frozen_mlp_pb", "frozen_mlp_pbtxt"):
        desc = inspect_path(fixture_path(name))
        details = desc.versions[0].details
        assert details["inputs"] == {"features": {"dtype": "DT_FLOAT", "shape": [-1, 4], "name": "features:0"}}
        assert details["outputs"] == {"probabilities": {"dtype": "DT_FLOAT", "shape": [-1, 3],
                                                        "name": "probabilities:0"}}
        assert {"MatMul", "Softmax", "Placeholder"} <= set(details["ops"])
        assert details["node_count"] > 5
        assert codes(desc) == ["not-a-savedmodel"] and desc.diagnostics[0].severity == "info"


def test_two_input_graph(fixture_path):
    details = inspect_path(fixture_path("frozen_two_io_pb")).versions[0].details
    assert {k: v["dtype"] for k, v in details["inputs"].items()} == {"dense_features": "DT_FLOAT", "ids": "DT_INT64"}
    assert details["inputs"]["ids"]["shape"] == [-1]
    assert {k: v["dtype"] for k, v in details["outputs"].items()} == {"score": "DT_FLOAT", "class_id": "DT_INT64"}


def test_checkpoint_by_prefix_meta_and_dir(fixture_path):
    prefix = fixture_path("tf1_checkpoint")
    for path in (prefix, prefix.with_name(prefix.name + ".meta"), prefix.parent):
        desc = inspect_path(path)
        assert desc.format == "tf1-checkpoint"
        details = desc.versions[0].details
        assert set(details["inputs"]) == {"x"} and set(details["outputs"]) == {"y"}
        assert details["variables"]["weights"]["shape"] == [4, 2]
        assert details["variables"]["bias"]["shape"] == [2]
        assert "missing-variables" not in codes(desc)


def test_checkpoint_missing_data_shard(fixture_path, tmp_path):
    prefix = fixture_path("tf1_checkpoint")
    for f in prefix.parent.iterdir():
        if ".data-" not in f.name:
            shutil.copy(f, tmp_path / f.name)
    desc = inspect_path(tmp_path / prefix.name)
    [f] = [d for d in desc.diagnostics if d.code == "missing-variables"]
    assert ".data-00000-of-00001" in f.message


def test_checkpoint_without_meta(cli, fixture_path):
    result = cli("inspect", fixture_path("bad_checkpoint_no_meta"), "--json")
    assert result.exit_code == 2
    assert result.json()["error"]["code"] == "checkpoint-without-meta"


def test_sinks_skip_machinery_but_keep_outputs_that_look_like_it():
    from tfsconvert import graph, tfproto

    graph_def = tfproto.message_class("GraphDef")()
    for name, op in [("x", "Placeholder"), ("initial_score", "Identity"), ("saved_rate", "Identity"),
                     ("init", "NoOp"), ("init_1", "NoOp"), ("save/SaveV2", "SaveV2"), ("save_1/Identity", "Identity")]:
        node = graph_def.node.add(name=name, op=op)
        if op == "Identity":
            node.input.append("x")
    assert sorted(graph.sinks(graph_def)) == ["initial_score", "saved_rate"]


def test_sinks_skip_control_flow_plumbing_in_nested_and_numbered_scopes():
    from tfsconvert import graph, tfproto

    graph_def = tfproto.message_class("GraphDef")()
    for name, op, inputs in [
        ("x", "Placeholder", []), ("p", "PlaceholderWithDefault", ["c"]), ("c", "Const", []),
        ("cond_1/Switch", "Switch", ["x", "p"]), ("cond_1/switch_f", "Identity", ["cond_1/Switch:1"]),
        ("rnn/while/Exit", "Exit", ["x"]), ("encoder/while/cond_2/switch_t", "Identity", ["cond_1/Switch"]),
        ("model/while/Identity_3", "Identity", ["model/while"]), ("model/while", "StatelessWhile", ["x"]),
        ("conditional_score", "Identity", ["cond_1/Switch"]), ("score", "Identity", ["x"]),
    ]:
        graph_def.node.add(name=name, op=op, input=inputs)
    assert sorted(graph.sinks(graph_def)) == ["conditional_score", "score"]
    assert list(graph.optional_inputs(graph_def)) == ["p"] and list(graph.placeholders(graph_def)) == ["x"]


def test_a_graph_frozen_at_a_bare_merge_still_offers_it():
    from tfsconvert import graph, tfproto

    graph_def = tfproto.message_class("GraphDef")()
    for name, op, inputs in [("x", "Placeholder", []), ("cond/Switch", "Switch", ["x", "x"]),
                             ("cond/Merge", "Merge", ["cond/Switch", "cond/Switch:1"])]:
        graph_def.node.add(name=name, op=op, input=inputs)
    assert list(graph.sinks(graph_def)) == ["cond/Merge"]


def test_unread_placeholders_are_not_inputs_and_optional_inputs_show_small_defaults():
    import numpy as np

    from tfsconvert import graph, tensor_codec, tfproto

    graph_def = tfproto.message_class("GraphDef")()
    graph_def.node.add(name="unused_control_flow_input", op="Placeholder")
    graph_def.node.add(name="x", op="Placeholder")
    for name, value, dtype in [("rate", np.array(0.1, np.float32), "DT_FLOAT"),
                               ("mode", np.array([b"eval"]), "DT_STRING"),
                               ("mask", np.zeros(17, np.float32), "DT_FLOAT"), ("flag", np.array(False), "DT_BOOL")]:
        const = graph_def.node.add(name=f"{name}/default", op="Const")
        const.attr["value"].tensor.CopyFrom(tensor_codec.to_proto(value, dtype))
        graph_def.node.add(name=name, op="PlaceholderWithDefault", input=[const.name])
    graph_def.node.add(name="y", op="AddN", input=["x", "rate", "mode", "mask", "flag"])
    assert list(graph.placeholders(graph_def)) == ["x"]
    defaults = {name: spec["default"] for name, spec in graph.optional_inputs(graph_def).items()}
    assert defaults == {"rate": 0.1, "mode": ["eval"], "mask": None, "flag": False}
