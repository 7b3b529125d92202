"""The gRPC front end (docs/tf-serving.md §5): TF Serving's PredictionService and ModelService as grpcio generic
handlers on tfsconvert.tfproto's declarations of their messages (the wire format of `tensorflow_serving.apis`,
without TensorFlow); statuses are the core's ServingErrors with the same code numbers."""

from __future__ import annotations

import functools
import time
from concurrent import futures

from tfsconvert import tfproto
from tfsconvert.server import core, examples, monitoring, responses
from tfsconvert.server.manager import Manager
from tfsconvert.server.status import ServingError, invalid
from tfsconvert.server.tensors import to_array, to_proto

_MAX_MESSAGE = 2 ** 31 - 1  # INT32_MAX both ways, as server.cc sets it (docs/tf-serving.md §5.3)


def _aborts_on_error(method):
    """Turn a ServingError into the RPC's status (code and details)."""

    @functools.wraps(method)
    def wrapper(request, context):
        import grpc

        try:
            return method(request, context)
        except ServingError as error:
            context.abort(grpc.StatusCode[error.code], error.grpc_details)

    return wrapper


def _monitored(method, api: str):
    """Predict, Classify and Regress: counted for the Prometheus page when it is enabled."""

    @functools.wraps(method)
    def wrapper(request, context):
        metrics, started, code = monitoring.metrics, time.monotonic(), "OK"
        try:
            return method(request, context)
        except ServingError as error:
            code = error.code
            raise
        finally:
            if metrics is not None:
                metrics.record(request.model_spec.name, api, "GRPC", code,
                               (time.monotonic() - started) * 1e6)

    return wrapper


def _target(request, manager: Manager):
    """(name, version, servable) for a request's ModelSpec (docs/tf-serving.md §5.2: no version -> latest)."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    spec = request.model_spec
    if not spec.name:
        raise invalid("ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    served, servable = manager.resolve(spec.name, version, label)
    return spec.name, served, servable


def _on_examples(request, manager: Manager, run):
    """(response ModelSpec, results) of core.classify or core.regress on a request's `Input`."""
    name, version, servable = _target(request, manager)
    signature, results = run(servable, request.model_spec.signature_name, examples.from_input(request.input))
    return responses.model_spec(name, version, signature), results


def _services(manager: Manager) -> dict[str, dict]:
    """Per service, its methods: name -> (implementation, request message)."""

    def predict(request, context):
        name, version, servable = _target(request, manager)
        inputs = {alias: to_array(proto, alias) for alias, proto in request.inputs.items()}
        result = core.predict(servable, request.model_spec.signature_name, inputs, tuple(request.output_filter))
        response = _message("PredictResponse")(model_spec=responses.model_spec(name, version, result.signature_name))
        for alias, array in result.arrays.items():
            response.outputs[alias].CopyFrom(to_proto(array, result.dtypes[alias]))
        return response

    def classify(request, context):
        model_spec, results = _on_examples(request, manager, core.classify)
        response = _message("ClassificationResponse")(model_spec=model_spec)
        for result in results:
            response.result.classifications.add().classes.extend(
                _message("Class")(label=label, score=score) for label, score in result)
        return response

    def regress(request, context):
        model_spec, values = _on_examples(request, manager, core.regress)
        response = _message("RegressionResponse")(model_spec=model_spec)
        response.result.regressions.extend(_message("Regression")(value=value) for value in values)
        return response

    def multi_inference(request, context):
        raise ServingError("UNIMPLEMENTED", "MultiInference is not supported by tfsconvert's server yet")

    def metadata(request, context):
        name, version, servable = _target(request, manager)
        return responses.metadata_response(name, version, servable.signatures, tuple(request.metadata_field))

    def status(request, context):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        return responses.status_response(manager, spec.name, version)

    def reload_config(request, context):
        raise ServingError("UNIMPLEMENTED", "HandleReloadConfigRequest is not supported by tfsconvert's server yet")

    return {
        "tensorflow.serving.PredictionService": {
            "Predict": (_monitored(predict, "Predict"), "PredictRequest"),
            "Classify": (_monitored(classify, "Classify"), "ClassificationRequest"),
            "Regress": (_monitored(regress, "Regress"), "RegressionRequest"),
            "MultiInference": (multi_inference, None),
            "GetModelMetadata": (metadata, "GetModelMetadataRequest"),
        },
        "tensorflow.serving.ModelService": {
            "GetModelStatus": (status, "GetModelStatusRequest"),
            "HandleReloadConfigRequest": (reload_config, None),
        },
    }


def _message(name: str):
    return tfproto.message_class(name)


def _handlers(manager: Manager) -> list:
    """grpcio generic handlers for TF Serving's two services (their method paths and wire format)."""
    import grpc

    handlers = []
    for service, methods in _services(manager).items():
        handlers.append(grpc.method_handlers_generic_handler(service, {
            name: grpc.unary_unary_rpc_method_handler(
                _aborts_on_error(method),
                request_deserializer=_message(request).FromString if request else bytes,  # None: unread
                response_serializer=lambda response: response.SerializeToString())
            for name, (method, request) in methods.items()}))
    return handlers


def start(host: str, port: int, manager: Manager, workers: int = 16):
    """A started grpc.Server; ServingError if the port cannot be bound (main.cc exits then)."""
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                                  ("grpc.max_receive_message_length", _MAX_MESSAGE),
                                  ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(_handlers(manager))
    try:
        bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise invalid("Failed to BuildAndStart gRPC server")
    server.start()
    return server
