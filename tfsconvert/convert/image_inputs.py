"""Sample makers for encoded-image inputs.

A string input that reaches DecodeJpeg, DecodePng, DecodeImage or DecodeAndCropJpeg (directly, or
per element inside `tf.map_fn`'s loop and a `tf.function` body) holds image files. Its samples are
valid JPEG or PNG files, encoded by TensorFlow itself, with the channels the decoder asks for and
the size the graph goes on to use: a resize's target size, a reshape or `set_shape`/`ensure_shape`
to a known height and width, a crop window's extent, else 224x224.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from tfsconvert import tfproto
from tfsconvert.convert.dataflow import Library, Place, output_shape
from tfsconvert.samples import ValueMaker

DECODERS = frozenset({"DecodeJpeg", "DecodeAndCropJpeg", "DecodePng", "DecodeImage"})
DEFAULT_SIZE = (224, 224)
_BLOCK = 8  # pixels per side of the flat-colour blocks a synthesized image is made of
# Ops a string passes through on its way to a decoder: slicing, batching, loops, tf.map_fn's lists.
_STRING_CARRIERS = frozenset({
    "Identity", "IdentityN", "Snapshot", "StopGradient", "Reshape", "Squeeze", "ExpandDims", "StridedSlice",
    "Slice", "GatherV2", "Gather", "Unpack", "TensorListFromTensor", "TensorListGetItem", "TensorArrayScatterV3",
    "TensorArrayReadV3", "Enter", "Merge", "Switch", "NextIteration", "Exit", "PlaceholderWithDefault"})
# Ops between a decoded image and the op that fixes its size: casts, scaling, batching, loops.
_IMAGE_CARRIERS = frozenset({
    "Identity", "IdentityN", "Snapshot", "Cast", "ExpandDims", "Squeeze", "Mul", "RealDiv", "Div", "Sub", "Add",
    "AddV2", "Maximum", "Minimum", "ClipByValue", "TensorListSetItem", "TensorListStack", "TensorArrayWriteV3",
    "TensorArrayGatherV3", "Enter", "Merge", "Switch", "NextIteration", "Exit"})
_RESIZES = frozenset({"ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "ResizeArea",
                      "ScaleAndTranslate"})
# Ops whose output shape is the image's own size (elementwise ops keep it; a resize sets it).
_SIZED = _IMAGE_CARRIERS | _RESIZES | DECODERS | {"Reshape", "EnsureShape"}


@dataclass(frozen=True)
class ImageSpec:
    """What a decoder expects: file format, pixel size, channels and sample type."""

    format: str  # "jpeg" or "png"
    height: int
    width: int
    channels: int
    dtype: str = "uint8"  # "uint16" for a 16-bit PNG decoder


def image_makers(graph, inputs: dict[str, object]) -> dict[str, ValueMaker]:
    """alias -> maker of encoded images, for each string input (a tf.Tensor of `graph`) a decoder reads."""
    strings = {alias: tensor for alias, tensor in inputs.items() if tensor.dtype.name == "string"}
    if not strings:
        return {}
    library = Library(graph.as_graph_def(add_shapes=True))
    specs = {alias: image_spec(library, Place(None, tensor.op.name)) for alias, tensor in strings.items()}
    return {alias: _maker(spec) for alias, spec in specs.items() if spec is not None}


def image_spec(library: Library, start: Place) -> ImageSpec | None:
    """The image the first decoder reached from `start` expects, None when no decoder reads it."""
    for place, node in library.flows(start, _STRING_CARRIERS):
        if node.op in DECODERS:
            return _decoder_spec(library, place, node)
    return None


def _decoder_spec(library: Library, place: Place, node) -> ImageSpec:
    channels = _attr(node, "channels").i or 3
    size = _crop_extent(library, place, node)
    if size is None:
        ratio = _attr(node, "ratio").i or 1  # DecodeJpeg's downscaling: the file is `ratio` times larger
        height, width = _size_after(library, place, node, channels) or DEFAULT_SIZE
        size = height * ratio, width * ratio
    png = node.op == "DecodePng" or channels == 4  # JPEG has no alpha channel
    wide = node.op == "DecodePng" and tfproto.dtype_name(_attr(node, "dtype").type) == "DT_UINT16"
    return ImageSpec("png" if png else "jpeg", *size, channels, "uint16" if wide else "uint8")


def _attr(node, name: str):
    """An attr value, or an empty one (i == 0, type == 0) when the NodeDef does not set it."""
    from tensorflow.core.framework import attr_value_pb2

    return node.attr[name] if name in node.attr else attr_value_pb2.AttrValue()


def _crop_extent(library: Library, place: Place, node) -> tuple[int, int] | None:
    """DecodeAndCropJpeg with a constant window [y, x, h, w]: the image must reach y + h, x + w."""
    if node.op != "DecodeAndCropJpeg":
        return None
    window = _constant(library, place, 1)
    return None if window is None else (int(window[0] + window[2]), int(window[1] + window[3]))


def _size_after(library: Library, place: Place, node, channels: int) -> tuple[int, int] | None:
    """(height, width) from the nearest op after the decoder that fixes them, None if none does."""
    for reached_place, reached in chain([(place, node)], library.flows(place, _IMAGE_CARRIERS)):
        shape = output_shape(reached) if reached.op in _SIZED else None
        if shape and len(shape) in (3, 4) and shape[-1] == channels and min(shape[-3:-1]) > 0:
            return shape[-3], shape[-2]
        if reached.op in _RESIZES:
            size = _constant(library, reached_place, 1)
            return None if size is None else (int(size[0]), int(size[1]))
    return None


def _constant(library: Library, place: Place, position: int) -> np.ndarray | None:
    """The value of a Const feeding input `position` of the node at `place`, else None."""
    source = library.input_node(place, position)
    if source is None or source.op != "Const":
        return None
    from tensorflow import make_ndarray

    return make_ndarray(source.attr["value"].tensor)


def _maker(spec: ImageSpec) -> ValueMaker:
    def make(rng: np.random.Generator, index: int, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        for position in np.ndindex(shape):
            out[position] = _encode(spec, _pixels(rng, spec))
        return out

    return make


def _pixels(rng: np.random.Generator, spec: ImageSpec) -> np.ndarray:
    """A picture of random flat-colour blocks (blocks compress well, and resizing them blends colours)."""
    top = np.iinfo(spec.dtype).max
    blocks = rng.integers(0, top + 1, (-(-spec.height // _BLOCK), -(-spec.width // _BLOCK), spec.channels))
    pixels = np.repeat(np.repeat(blocks, _BLOCK, axis=0), _BLOCK, axis=1)
    return pixels[:spec.height, :spec.width].astype(spec.dtype)


def _encode(spec: ImageSpec, pixels: np.ndarray) -> bytes:
    """The JPEG or PNG file TensorFlow writes for `pixels` (height x width x channels)."""
    from tfsconvert.runtimes.tf import quiet_tf

    with quiet_tf() as tf:
        image = tf.constant(pixels)
        data = tf.io.encode_png(image) if spec.format == "png" else tf.io.encode_jpeg(image)
    return data.numpy()
