"""The gRPC front end (docs/tf-serving.md §5) on the official `tensorflow_serving.apis` services; statuses are
the core's ServingErrors with the same code numbers."""

from __future__ import annotations

import functools
import time
from concurrent import futures

from tfsconvert.server import core, examples, monitoring, responses
from tfsconvert.server.manager import Manager
from tfsconvert.server.status import ServingError, invalid
from tfsconvert.server.tensors import to_array, to_proto

_MAX_MESSAGE = 2 ** 31 - 1  # INT32_MAX both ways, as server.cc sets it (docs/tf-serving.md §5.3)


def _aborts_on_error(method):
    """Turn a ServingError into the RPC's status (code and details)."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        import grpc

        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(grpc.StatusCode[error.code], error.grpc_details)

    return wrapper


def _monitored(method):
    """Predict, Classify and Regress: counted for the Prometheus page when it is enabled."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        metrics, started, code = monitoring.metrics, time.monotonic(), "OK"
        try:
            return method(self, request, context)
        except ServingError as error:
            code = error.code
            raise
        finally:
            if metrics is not None:
                metrics.record(request.model_spec.name, method.__name__, "GRPC", code,
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


def _services(manager: Manager):
    from tensorflow_serving.apis import (classification_pb2, model_service_pb2_grpc, predict_pb2,
                                         prediction_service_pb2_grpc, regression_pb2)

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        @_aborts_on_error
        @_monitored
        def Predict(self, request, context):
            name, version, servable = _target(request, manager)
            inputs = {alias: to_array(proto, alias) for alias, proto in request.inputs.items()}
            result = core.predict(servable, request.model_spec.signature_name, inputs, tuple(request.output_filter))
            response = predict_pb2.PredictResponse(
                model_spec=responses.model_spec(name, version, result.signature_name))
            for alias, array in result.arrays.items():
                response.outputs[alias].CopyFrom(to_proto(array, result.dtypes[alias]))
            return response

        @_aborts_on_error
        @_monitored
        def Classify(self, request, context):
            model_spec, results = _on_examples(request, manager, core.classify)
            response = classification_pb2.ClassificationResponse(model_spec=model_spec)
            for result in results:
                response.result.classifications.add().classes.extend(
                    classification_pb2.Class(label=label, score=score) for label, score in result)
            return response

        @_aborts_on_error
        @_monitored
        def Regress(self, request, context):
            model_spec, values = _on_examples(request, manager, core.regress)
            response = regression_pb2.RegressionResponse(model_spec=model_spec)
            response.result.regressions.extend(regression_pb2.Regression(value=value) for value in values)
            return response

        @_aborts_on_error
        def MultiInference(self, request, context):
            raise ServingError("UNIMPLEMENTED", "MultiInference is not supported by tfsconvert's server yet")

        @_aborts_on_error
        def GetModelMetadata(self, request, context):
            name, version, servable = _target(request, manager)
            return responses.metadata_response(name, version, servable.signatures, tuple(request.metadata_field))

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        @_aborts_on_error
        def GetModelStatus(self, request, context):
            if not request.HasField("model_spec"):
                raise invalid("Missing ModelSpec")
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            return responses.status_response(manager, spec.name, version)

        @_aborts_on_error
        def HandleReloadConfigRequest(self, request, context):
            raise ServingError("UNIMPLEMENTED", "HandleReloadConfigRequest is not supported by tfsconvert's server "
                               "yet")

    return (prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server, PredictionService()), \
        (model_service_pb2_grpc.add_ModelServiceServicer_to_server, ModelService())


def start(host: str, port: int, manager: Manager, workers: int = 16):
    """A started grpc.Server; ServingError if the port cannot be bound (main.cc exits then)."""
    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                                  ("grpc.max_receive_message_length", _MAX_MESSAGE),
                                  ("grpc.so_reuseport", 0)])
    for add, servicer in _services(manager):
        add(servicer, server)
    try:
        bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise invalid("Failed to BuildAndStart gRPC server")
    server.start()
    return server
