"""Source: a Keras model (`.keras` or `.h5`); aliases are the input and output layer names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfsconvert.convert.names import not_found
from tfsconvert.convert.tf_source import TfSource
from tfsconvert.errors import InputError
from tfsconvert.inspect.keras_model import keras_spec, layer_name, load_model
from tfsconvert.model import Signature
from tfsconvert.tf_runtime import PREDICT_METHOD, quiet_tf


class KerasSource(TfSource):
    kind = "keras"

    def __init__(self, path: Path, model) -> None:
        super().__init__(path)
        self.model = model
        self.layer_inputs = [layer_name(t) for t in model.inputs]
        self.layer_outputs = [layer_name(t) for t in model.outputs]
        self.inputs: dict[str, str] = {}  # alias -> input layer name
        self.outputs: dict[str, str] = {}  # alias -> output layer name

    def _pick(self, mapping: dict[str, str], layers: list[str], flag: str) -> dict[str, str]:
        chosen = {}
        for alias, name in mapping.items():
            name = name.removesuffix(":0")
            if name not in layers:
                raise not_found(f"{flag[2:]} layer", name, layers, str(self.path), flag)
            chosen[alias] = name
        return chosen

    def resolve(self, inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
        self.inputs = self._pick(inputs, self.layer_inputs, "--input") or {n: n for n in self.layer_inputs}
        missing = [n for n in self.layer_inputs if n not in self.inputs.values()]
        if missing:
            raise InputError("missing-input", f"the model needs input layers {', '.join(missing)} that no --input "
                             f"names", "add " + " ".join(f"--input {n}={n}" for n in missing))
        self.outputs = self._pick(outputs, self.layer_outputs, "--output") or {n: n for n in self.layer_outputs}
        specs = {layer_name(t): keras_spec(t) for t in (*self.model.inputs, *self.model.outputs)}
        return Signature(PREDICT_METHOD, {a: specs[n] for a, n in self.inputs.items()},
                         {a: specs[n] for a, n in self.outputs.items()})

    def source_names(self) -> dict[str, str]:
        return {**self.inputs, **self.outputs}

    def _call(self, args: list):
        """Call the model on its inputs in the model's order; outputs as a list in the model's order."""
        result = self.model(args if len(args) > 1 else args[0], training=False)
        return list(result) if isinstance(result, (list, tuple)) else [result]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        by_layer = {self.inputs[alias]: value for alias, value in feeds.items()}
        values = self._call([by_layer[name] for name in self.layer_inputs])
        return {alias: np.asarray(values[self.layer_outputs.index(name)]) for alias, name in self.outputs.items()}

    def write_savedmodel(self, dest: Path, signature_name: str) -> None:
        with quiet_tf() as tf:
            import keras

            alias_of = {name: alias for alias, name in self.inputs.items()}
            # TensorSpec names become the signature's input aliases, the dict keys its output aliases.
            specs = [tf.TensorSpec([None if d == -1 else d for d in keras_spec(t).shape], t.dtype,
                                   name=alias_of[layer_name(t)]) for t in self.model.inputs]

            def serve(*args):
                values = self._call(list(args))
                return {alias: values[self.layer_outputs.index(name)] for alias, name in self.outputs.items()}

            # Keras' own exporter tracks Keras 3 variables so TF1 session loaders can restore them.
            archive = keras.export.ExportArchive()
            archive.track(self.model)
            archive.add_endpoint(signature_name, serve, input_signature=specs)
            archive.write_out(str(dest), verbose=False)


def load(path: Path) -> KerasSource:
    return KerasSource(path, load_model(path))
