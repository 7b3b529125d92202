"""An embedded server that behaves like `tensorflow_model_server` (docs/tf-serving.md).

It loads TF SavedModels, ONNX and PMML versions behind TF Serving's REST and gRPC APIs, with TF
Serving's lifecycle, flags, status codes and error messages. Run `python -m
tfsconvert.server --help`. Nothing heavy is imported at module level.
"""
