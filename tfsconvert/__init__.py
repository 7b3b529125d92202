"""tfsconvert: get models into TensorFlow Serving without the classic deployment failures."""

__version__ = "0.1.0"
