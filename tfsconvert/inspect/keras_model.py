"""Reader for Keras models (`.keras` zip archives and legacy `.h5` files).

The container is checked with the standard library and h5py first, so garbage is rejected
without importing TensorFlow; only a plausible model is loaded with Keras (safe_mode on).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from tfsconvert.errors import InputError, missing_dependency, unreadable
from tfsconvert.findings import finding
from tfsconvert.model import ModelDescription, TensorSpec
from tfsconvert.naming import is_generic
from tfsconvert.quiet import native_stderr_silenced

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TF_DTYPES = {
    "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "float32": "DT_FLOAT", "float64": "DT_DOUBLE",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "bool": "DT_BOOL", "string": "DT_STRING", "complex64": "DT_COMPLEX64", "complex128": "DT_COMPLEX128",
}
_RESAVE = "re-save the model with model.save('model.keras') and check the file was copied in binary mode"


def _bad(path: Path, why: str, code: str = "corrupt-model-file", hint: str = _RESAVE) -> InputError:
    return InputError(code, f"{path} is not a Keras model: {why}", hint)


def _container_info(path: Path) -> dict:
    """Validate the file cheaply and read the Keras version it was saved with."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise unreadable(path, error) from None
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                if "config.json" not in names:
                    raise _bad(path, "the zip archive has no config.json (not a Keras 3 .keras file)")
                meta = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
        except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _bad(path, f"the .keras archive is damaged ({error})") from None
        return {"container": "keras-v3-zip", "keras_version": meta.get("keras_version")}
    if head == _HDF5_SIGNATURE:
        try:
            import h5py
        except ImportError:
            raise missing_dependency("h5py", "tensorflow") from None
        try:
            with h5py.File(path, "r") as h5:
                if "model_config" not in h5.attrs:
                    raise _bad(path, "the HDF5 file has no model_config attribute (a weights-only file?)",
                               "unsupported-format",
                               "save the whole model (model.save('model.keras')), not model.save_weights()")
                version = h5.attrs.get("keras_version")
        except OSError as error:
            raise _bad(path, f"the HDF5 file is damaged ({error})") from None
        if isinstance(version, bytes):
            version = version.decode()
        return {"container": "hdf5", "keras_version": version}
    raise _bad(path, "expected a .keras zip archive or an HDF5 file, found neither")


def keras_spec(tensor) -> TensorSpec:
    # Named after the layer: symbolic output tensors get counter names (`keras_tensor_7`) that
    # change from one load to the next.
    dtype = str(tensor.dtype)
    shape = None if tensor.shape is None else [-1 if d is None else int(d) for d in tensor.shape]
    return TensorSpec(_TF_DTYPES.get(dtype, "DT_INVALID"), shape, layer_name(tensor), dtype)


def layer_name(tensor) -> str:
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    return getattr(operation, "name", None) or tensor.name


def structure(model, side: str):
    """The model's inputs (`side="input"`) or outputs as it takes or returns them: a dict, a list
    or one tensor. A Sequential model has one of each and no `model.input` of its own."""
    try:
        return getattr(model, side)
    except AttributeError:
        return getattr(model, side + "s")[0]


def named_tensors(struct) -> dict[str, object]:
    """Name -> symbolic tensor in the model's flat order: the dict keys where the model takes or
    returns a dict (`{"ctr": ..., "cvr": ...}`), else the layer names (`tower`, `tower_1` for a
    layer that gives two of the outputs)."""
    import keras

    named = {}
    for path, tensor in keras.tree.flatten_with_path(struct):
        keys = [key for key in path if isinstance(key, str)]
        name = base = "_".join(keys) if keys else layer_name(tensor)
        while name in named:  # one layer's two outputs, or a shared layer called twice
            name = f"{base}_{len(named)}"
        named[name] = tensor
    return named


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _auto_named(name: str, layer) -> bool:
    """Keras auto-names layers `<snake_case class>[_N]` (`input_layer`, `dense_3`)."""
    base = re.sub(r"_\d+$", "", name)
    return is_generic(name) or (layer is not None and base == _snake(type(layer).__name__))


def load_model(path: Path):
    """Check the container cheaply, then load the model with Keras (compile=False, safe_mode on)."""
    _container_info(path)
    return _load(path)


def _load(path: Path):
    try:
        with native_stderr_silenced():
            import keras
    except ImportError:
        raise missing_dependency("keras", "tensorflow") from None
    try:
        with native_stderr_silenced():
            return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError/TypeError/KeyError for bad configs
        text = str(error).strip() or type(error).__name__
        first_line = re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0][:200]  # first sentence
        hint = _RESAVE
        if "safe_mode" in str(error) or "Lambda" in str(error):
            hint = "replace Lambda layers with named custom layers registered with " \
                   "@keras.saving.register_keras_serializable, then re-save"
        elif "Could not locate" in str(error) or "Unknown layer" in str(error):
            hint = "register the custom class with @keras.saving.register_keras_serializable " \
                   "and import it before converting"
        raise InputError("unsupported-format", f"{path} could not be loaded by Keras: {first_line}",
                         hint) from None


def describe(path: Path) -> ModelDescription:
    """Describe a Keras model: input/output layers, versions, layer and parameter counts."""
    path = Path(path)
    info = _container_info(path)
    model = _load(path)

    try:  # a Sequential model saved before it was built has no inputs yet
        inputs, outputs = named_tensors(structure(model, "input")), named_tensors(structure(model, "output"))
    except (AttributeError, ValueError):
        inputs, outputs = {}, {}
    layers = {layer.name: layer for layer in model.layers}
    input_layers = {layer.name: layer for layer in getattr(model, "_input_layers", [])}
    layers.update(input_layers)

    details = {
        "keras_version": info["keras_version"],
        "container": info["container"],
        "model_class": type(model).__name__,
        "model_name": model.name,
        "layer_count": len(model.layers),
        "parameter_count": int(model.count_params()) if model.built else None,
        "inputs": {name: keras_spec(t).to_json() for name, t in inputs.items()},
        "outputs": {name: keras_spec(t).to_json() for name, t in outputs.items()},
    }

    if not inputs:
        details["note"] = "the model was saved before it was built, so its inputs are unknown"

    diagnostics = []
    generic = [name for name in [*details["inputs"], *details["outputs"]]
               if _auto_named(name, layers.get(name))]
    if generic:
        diagnostics.append(finding(
            "unnamed-signature-io",
            f"input/output layers have default names ({', '.join(generic)}); a SavedModel export "
            "would expose them as generic aliases",
            "name the layers (keras.Input(shape=..., name='features'), Dense(..., name='probabilities')) "
            "and re-save, or pass --input/--output to `tfsconvert saved-model`",
            path,
        ))
    return ModelDescription.single(path, "keras", details=details, diagnostics=diagnostics)
