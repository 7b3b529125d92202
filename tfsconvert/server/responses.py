"""GetModelStatus and GetModelMetadata responses, built once for both front ends (docs/tf-serving.md §4.3, §4.4, §5.2)."""

from __future__ import annotations

from tfsconvert.server.manager import Manager
from tfsconvert.server.status import CODES, invalid

SIGNATURE_DEF = "signature_def"


def model_spec(name: str, version: int | None = None, signature_name: str | None = None):
    """A ModelSpec naming the resolved version (and signature, when there is one)."""
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        spec.version.value = version
    if signature_name is not None:
        spec.signature_name = signature_name
    return spec


def status_response(manager: Manager, name: str, version: int | None):
    """Every tracked version (or the one asked for) with its state and error (get_model_status_impl.cc)."""
    from tensorflow_serving.apis import get_model_status_pb2, status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state in manager.status(name, version):
        error = state.error
        response.model_version_status.add(
            version=number, state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state),
            status=status_pb2.StatusProto(error_code=CODES[error.code] if error else 0,
                                          error_message=error.message if error else ""))
    return response


def metadata_response(name: str, version: int, signatures: dict, fields=(SIGNATURE_DEF,)):
    """`metadata["signature_def"]` packs a SignatureDefMap; only that field exists (docs/tf-serving.md §5.2)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    if not fields:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF:
            raise invalid(f"Metadata field {field} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(name, version))
    response.metadata[SIGNATURE_DEF].Pack(get_model_metadata_pb2.SignatureDefMap(signature_def=signatures))
    return response


def to_dict(message) -> dict:
    """Protobuf JSON as TF Serving prints it: proto field names, fields with defaults included."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def metadata_json(response) -> dict:
    """The REST body: the SignatureDefMap unpacked in place of the Any (docs/tf-serving.md §4.4)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signature_map)
    return {"model_spec": to_dict(response.model_spec), "metadata": {SIGNATURE_DEF: to_dict(signature_map)}}
