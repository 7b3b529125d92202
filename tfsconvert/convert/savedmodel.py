"""Source: an existing SavedModel, re-versioned and/or with its signature renamed.

The variables, assets and graph are copied unchanged; only `saved_model.pb` is rewritten when
the signatures or tags change. It then keeps one meta graph tagged exactly {serve}: the converted
signature (renamed by `--input/--output`) and every other signature of the source, unchanged
(classify and regress signatures keep their method and API keys), and drops the TF2 object graph,
so every loader (TF Serving's session loader and Python's `tf.saved_model.load`, which falls back
to the signature defs) sees the same names.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tfsconvert import tfproto
from tfsconvert.convert.names import not_found
from tfsconvert.convert.tf_source import TfSource
from tfsconvert.errors import InputError
from tfsconvert.findings import SEVERITY
from tfsconvert.inspect.savedmodel import INTERNAL_SIGNATURE_PREFIX, read_savedmodel
from tfsconvert.model import Signature, TensorSpec
from tfsconvert.naming import API_KEYS, DEFAULT_SIGNATURE, PREDICT_METHOD, SERVE_TAGS, is_api_key
from tfsconvert.runtimes.tf import ServingSession, quiet_tf
from tfsconvert.samples import ValueMaker

_REWRITTEN = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb")


class SavedModelSource(TfSource):
    kind = "savedmodel"

    def __init__(self, path: Path, saved_model, meta_index: int, signature_key: str) -> None:
        super().__init__(path)
        self.saved_model = saved_model
        self.meta_graph = saved_model.meta_graphs[meta_index]
        self.signature_key = signature_key
        self.source_signature = self.meta_graph.signature_def[signature_key]
        self.session = ServingSession(path, tuple(self.meta_graph.meta_info_def.tags))
        self.inputs: dict[str, str] = {}  # new alias -> source alias
        self.outputs: dict[str, str] = {}

    def _renames(self, mapping: dict[str, str], infos, flag: str) -> dict[str, str]:
        by_tensor = {info.name: alias for alias, info in infos.items()}
        renames = {}
        for new, old in mapping.items():
            old_alias = old if old in infos else by_tensor.get(old if ":" in old else old + ":0")
            if old_alias is None:
                raise not_found(f"signature '{self.signature_key}' {flag[2:]}", old, sorted(infos),
                                str(self.path), flag)
            renames[new] = old_alias
        return renames

    def resolve(self, inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
        sig = self.source_signature
        renamed = self._renames(inputs, sig.inputs, "--input")
        kept = {a: a for a in sig.inputs if a not in renamed.values()}
        clash = sorted(set(kept) & set(renamed))
        if clash:
            raise InputError("bad-name-mapping", f"--input alias {clash[0]!r} is already the name of another input",
                             f"rename that input too, e.g. --input {clash[0]}_2={clash[0]}")
        self.inputs = {**renamed, **kept}  # every input stays: the graph needs them all
        self.outputs = self._renames(outputs, sig.outputs, "--output") or {a: a for a in sig.outputs}
        self._check_api_keys()
        return Signature(_method(sig), {new: _spec(sig.inputs[old]) for new, old in self.inputs.items()},
                         {new: _spec(sig.outputs[old]) for new, old in self.outputs.items()})

    def _check_api_keys(self) -> None:
        """A classify/regress signature keeps the keys TF Serving's Classify/Regress API looks up."""
        method = _method(self.source_signature)
        if method not in API_KEYS:
            return
        for new, old in (*self.inputs.items(), *self.outputs.items()):
            if new != old and is_api_key(method, old, old in self.source_signature.outputs):
                others = [k for k, v in self.meta_graph.signature_def.items() if _method(v) == PREDICT_METHOD]
                raise InputError("bad-name-mapping", f"'{old}' of signature '{self.signature_key}' ({method}) is "
                                 f"a key TF Serving's {method.rsplit('/', 1)[1]} API requires; it cannot be renamed",
                                 f"rename a predict signature instead: --source-signature {others[0]}" if others
                                 else "drop that --input/--output flag")

    def _kept(self, signature_name: str) -> list[str]:
        """The source's other client signatures (the converted one's new key replaces any)."""
        return sorted(k for k in self.meta_graph.signature_def if k not in (self.signature_key, signature_name)
                      and not k.startswith(INTERNAL_SIGNATURE_PREFIX))

    def _aliases(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """(inputs, outputs) as new alias -> source alias for signature `key`: the converted one's, or
        the same renames applied to a kept predict signature that has those aliases (no clash)."""
        if key == self.signature_key:
            return self.inputs, self.outputs
        sig = self.meta_graph.signature_def[key]
        if _method(sig) != PREDICT_METHOD:
            return {a: a for a in sig.inputs}, {a: a for a in sig.outputs}
        maps = []
        for infos, converted in ((sig.inputs, self.inputs), (sig.outputs, self.outputs)):
            renamed = {old: new for new, old in converted.items() if old in infos}
            new = {renamed.get(a, a): a for a in infos}
            maps.append(new if len(new) == len(infos) else {a: a for a in infos})
        return maps[0], maps[1]

    def kept_signatures(self, signature_name: str) -> dict[str, Signature]:
        return {key: _signature(self._written(key)) for key in self._kept(signature_name)}

    def kept_makers(self, key: str) -> dict[str, ValueMaker]:
        return self._makers(dict(self._written(key).inputs))

    def run_kept(self, key: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs, outputs = self._aliases(key)
        values = self.session.run(key, {inputs[a]: v for a, v in feeds.items()})
        return {new: values[old] for new, old in outputs.items()}

    def source_names(self) -> dict[str, str]:
        return {**self.inputs, **self.outputs}

    def close(self) -> None:
        self.session.close()

    def value_makers(self) -> dict[str, ValueMaker]:
        infos = self.source_signature.inputs
        return self._makers({new: infos[old] for new, old in self.inputs.items()})

    def _makers(self, infos: dict) -> dict[str, ValueMaker]:
        """Sample makers for inputs (alias -> TensorInfo) from what the graph does with them."""
        from tfsconvert.convert.input_meaning import graph_makers

        graph = self.session.graph
        return graph_makers(graph, {alias: graph.get_tensor_by_name(info.name) for alias, info in infos.items()})

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_kept(self.signature_key, feeds)

    def onnx_input(self, scratch: Path, signature_name: str) -> tuple[Path, str, dict[str, str] | None]:
        # tf2onnx freezes through the TF2 object graph, which a renamed copy no longer has.
        if sorted(self.meta_graph.meta_info_def.tags) != list(SERVE_TAGS):
            return super().onnx_input(scratch, signature_name)
        return self.path, self.signature_key, {**self.inputs, **self.outputs}

    def _written(self, key: str):
        """The SignatureDef written for the source's signature `key`: aliases as _aliases, method as _method."""
        sig = self.meta_graph.signature_def[key]
        target = type(sig)()
        target.CopyFrom(sig)
        target.method_name = _method(sig)
        target.ClearField("inputs")
        target.ClearField("outputs")
        inputs, outputs = self._aliases(key)
        for new, old in inputs.items():
            target.inputs[new].CopyFrom(sig.inputs[old])
        for new, old in outputs.items():
            target.outputs[new].CopyFrom(sig.outputs[old])
        return target

    def write_savedmodel(self, dest: Path, signature_name: str) -> None:
        shutil.copytree(self.path, dest, dirs_exist_ok=True, ignore=lambda d, names: [
            n for n in names if Path(d) == self.path and n in _REWRITTEN])
        with quiet_tf():
            from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel(saved_model_schema_version=self.saved_model.saved_model_schema_version)
        meta_graph = saved.meta_graphs.add()
        meta_graph.CopyFrom(self.meta_graph)
        meta_graph.meta_info_def.ClearField("tags")
        meta_graph.meta_info_def.tags.extend(SERVE_TAGS)
        signatures = {k: v for k, v in self.meta_graph.signature_def.items()
                      if k.startswith(INTERNAL_SIGNATURE_PREFIX)}
        signatures.update({key: self._written(key) for key in self._kept(signature_name)})
        signatures[signature_name] = self._written(self.signature_key)
        if _serialized(signatures) != _serialized(self.meta_graph.signature_def):
            meta_graph.ClearField("signature_def")
            for key, value in signatures.items():
                meta_graph.signature_def[key].CopyFrom(value)
            meta_graph.ClearField("object_graph_def")  # would still hold the old names for TF2 loaders
        (dest / "saved_model.pb").write_bytes(saved.SerializeToString(deterministic=True))


def _serialized(signatures) -> dict[str, bytes]:
    return {k: v.SerializeToString(deterministic=True) for k, v in signatures.items()}


def _method(sig) -> str:
    """The method a signature is written with: classify and regress kept, anything else predict."""
    return sig.method_name if sig.method_name in API_KEYS else PREDICT_METHOD


def _signature(sig) -> Signature:
    return Signature(_method(sig), {a: _spec(i) for a, i in sig.inputs.items()},
                     {a: _spec(i) for a, i in sig.outputs.items()})


def _spec(info) -> TensorSpec:
    shape = tfproto.shape_list(info.tensor_shape) if info.HasField("tensor_shape") else None
    return TensorSpec(tfproto.dtype_name(info.dtype), shape, info.name)


def _choose_meta_graph(path: Path, saved_model) -> int:
    tag_sets = [sorted(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]
    for index, tags in enumerate(tag_sets):
        if tags == list(SERVE_TAGS):
            return index
    serving = [i for i, tags in enumerate(tag_sets) if "serve" in tags]
    if len(serving) == 1 or len(tag_sets) == 1:
        return (serving or [0])[0]
    shown = "; ".join("{" + ", ".join(t) + "}" for t in tag_sets)
    raise InputError("missing-serve-tag", f"{path} has several meta graphs ({shown}) and none is tagged "
                     f"exactly {{serve}}", "re-export the serving graph alone with tags ['serve']")


def _choose_signature(path: Path, meta_graph, requested: str | None) -> str:
    keys = sorted(k for k in meta_graph.signature_def if not k.startswith(INTERNAL_SIGNATURE_PREFIX))
    if requested is not None:
        if requested not in keys:
            raise not_found("signature", requested, keys, str(path), "--source-signature")
        return requested
    if DEFAULT_SIGNATURE in keys or len(keys) == 1:
        return DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in keys else keys[0]
    if not keys:
        raise InputError("signature-not-found", f"{path} has no signature to serve",
                         "re-export it with a serving signature (tf.saved_model.save(..., signatures=...))")
    raise InputError("signature-not-found", f"{path} has signatures {', '.join(keys)} and none is "
                     f"'{DEFAULT_SIGNATURE}'", f"choose one: --source-signature {keys[0]}")


def load(path: Path, source_signature: str | None = None) -> SavedModelSource:
    """Check the SavedModel statically (fast, clear errors), then load it like TF Serving would."""
    _, findings = read_savedmodel(path, None)
    for problem in findings:
        if SEVERITY.get(problem.code) == "error" and problem.code != "missing-serve-tag":
            raise InputError(problem.code, problem.message, problem.hint)
    pb = path / "saved_model.pb"
    with quiet_tf():
        from google.protobuf import text_format
        from tensorflow.core.protobuf import saved_model_pb2
    saved_model = (saved_model_pb2.SavedModel.FromString(pb.read_bytes()) if pb.is_file() else
                   text_format.Parse((path / "saved_model.pbtxt").read_text(), saved_model_pb2.SavedModel()))
    index = _choose_meta_graph(path, saved_model)
    key = _choose_signature(path, saved_model.meta_graphs[index], source_signature)
    source = SavedModelSource(path, saved_model, index, key)
    tags = sorted(saved_model.meta_graphs[index].meta_info_def.tags)
    if tags != list(SERVE_TAGS):
        source.notes.append(f"the meta graph tagged {{{', '.join(tags)}}} is written with tags {{serve}}")
    return source
