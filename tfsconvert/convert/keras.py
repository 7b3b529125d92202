"""Source: a Keras model (`.keras` or `.h5`).

Aliases are the model's own input and output names: the dict keys of a model that takes or returns
a dict (`{"user_id": ..., "country": ...}` -> `{"ctr": ..., "cvr": ...}`), else the layer names.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from tfsconvert.convert.names import not_found
from tfsconvert.convert.tf_source import TfSource, spec_of
from tfsconvert.errors import InputError
from tfsconvert.inspect.keras_model import keras_spec, load_model, named_tensors, structure
from tfsconvert.model import Signature
from tfsconvert.naming import PREDICT_METHOD
from tfsconvert.runtimes.tf import quiet_tf
from tfsconvert.samples import ValueMaker


class KerasSource(TfSource):
    kind = "keras"

    def __init__(self, path: Path, model) -> None:
        super().__init__(path)
        self.model = model
        self.input_structure = structure(model, "input")
        self.input_tensors = named_tensors(self.input_structure)  # model name -> symbolic tensor
        self.output_tensors = named_tensors(structure(model, "output"))
        self.inputs: dict[str, str] = {}  # alias -> model input name
        self.outputs: dict[str, str] = {}  # alias -> model output name
        self._serve = None  # the traced serving tf.function, once resolved

    def _pick(self, mapping: dict[str, str], names: list[str], flag: str) -> dict[str, str]:
        chosen = {}
        for alias, name in mapping.items():
            name = name.removesuffix(":0")
            if name not in names:
                raise not_found(flag[2:], name, names, str(self.path), flag)
            chosen[alias] = name
        return chosen

    def resolve(self, inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
        names = list(self.input_tensors)
        self.inputs = self._pick(inputs, names, "--input") or {n: n for n in names}
        missing = [n for n in names if n not in self.inputs.values()]
        if missing:
            raise InputError("missing-input", f"the model needs inputs {', '.join(missing)} that no --input "
                             f"names", "add " + " ".join(f"--input {n}={n}" for n in missing))
        names = list(self.output_tensors)
        self.outputs = self._pick(outputs, names, "--output") or {n: n for n in names}
        self._serve = self._serving_function()
        # Output specs from the traced function: Keras' symbolic dtypes can be wrong (an inverted
        # StringLookup claims int64 and returns strings).
        traced = self._serve.get_concrete_function().structured_outputs
        return Signature(PREDICT_METHOD, {a: keras_spec(self.input_tensors[n]) for a, n in self.inputs.items()},
                         {a: replace(spec_of(traced[a]), name=keras_spec(self.output_tensors[n]).name)
                          for a, n in self.outputs.items()})

    def source_names(self) -> dict[str, str]:
        return {**self.inputs, **self.outputs}

    def value_makers(self) -> dict[str, ValueMaker]:
        from tfsconvert.convert.keras_samples import lookup_makers

        return lookup_makers({alias: self.input_tensors[name] for alias, name in self.inputs.items()})

    def _call(self, values: dict[str, object]) -> dict:
        """Call the model on values keyed by input name, packed as the model takes them (dict, list
        or one tensor); its outputs keyed by output name."""
        import keras

        by_id = {id(self.input_tensors[name]): value for name, value in values.items()}
        args = keras.tree.map_structure(lambda tensor: by_id[id(tensor)], self.input_structure)
        result = keras.tree.flatten(self.model(args, training=False))
        return dict(zip(self.output_tensors, result))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._call({self.inputs[alias]: value for alias, value in feeds.items()})
        return {alias: np.asarray(values[name]) for alias, name in self.outputs.items()}

    def _serving_function(self):
        """The tf.function the SavedModel serves: aliases in, aliases out."""
        with quiet_tf() as tf:
            # TensorSpec names become the signature's input aliases, the dict keys its output aliases.
            specs = [tf.TensorSpec([None if d == -1 else d for d in keras_spec(self.input_tensors[name]).shape],
                                   self.input_tensors[name].dtype, name=alias) for alias, name in self.inputs.items()]

            def serve(*args):
                values = self._call(dict(zip(self.inputs.values(), args)))
                return {alias: values[name] for alias, name in self.outputs.items()}

            return tf.function(serve, input_signature=specs, autograph=False)

    def write_savedmodel(self, dest: Path, signature_name: str) -> None:
        with quiet_tf():
            import keras

            # Keras' own exporter tracks Keras 3 variables (and the lookup tables of preprocessing
            # layers) so TF1 session loaders restore and initialize them.
            archive = keras.export.ExportArchive()
            archive.track(self.model)
            archive.add_endpoint(signature_name, self._serve)
            archive.write_out(str(dest), verbose=False)


def load(path: Path) -> KerasSource:
    model = load_model(path)
    try:
        structure(model, "input")
    except (AttributeError, ValueError):  # a Sequential saved unbuilt, a subclassed model
        raise InputError("unknown-input-shape", f"{path} holds a Keras {type(model).__name__} without known inputs "
                         "(saved before it was built, or a subclassed model)",
                         "build it on its inputs (keras.Input(shape=...) first, or model.build((None, ...))) and "
                         "re-save, or export it with model.export(DIR) and convert that SavedModel") from None
    return KerasSource(path, model)
