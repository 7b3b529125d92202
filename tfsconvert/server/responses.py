"""GetModelStatus and GetModelMetadata responses, built once for both front ends (docs/tf-serving.md §4.3, §4.4, §5.2).

The messages are tfsconvert.tfproto's declarations of TF Serving's (same wire format), so serving
needs no TensorFlow.
"""

from __future__ import annotations

from tfsconvert import tfproto
from tfsconvert.server.manager import Manager
from tfsconvert.server.status import CODES, invalid

SIGNATURE_DEF = "signature_def"
# The Any's type as TF Serving's clients unpack it (our declarations live in another proto package).
SIGNATURE_DEF_MAP_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def model_spec(name: str, version: int | None = None, signature_name: str | None = None):
    """A ModelSpec naming the resolved version (and signature, when there is one)."""
    spec = tfproto.message_class("ModelSpec")(name=name)
    if version is not None:
        spec.version.value = version
    if signature_name is not None:
        spec.signature_name = signature_name
    return spec


def status_response(manager: Manager, name: str, version: int | None):
    """Every tracked version (or the one asked for) with its state and error (get_model_status_impl.cc)."""
    response = tfproto.message_class("GetModelStatusResponse")()
    for number, state in manager.status(name, version):
        error = state.error
        entry = response.model_version_status.add(
            version=number, state=tfproto.enum_value("ModelVersionStatus", "state", state.state))
        entry.status.error_code = CODES[error.code] if error else 0
        entry.status.error_message = error.message if error else ""
    return response


def metadata_response(name: str, version: int, signatures: dict, fields=(SIGNATURE_DEF,)):
    """`metadata["signature_def"]` packs a SignatureDefMap; only that field exists (docs/tf-serving.md §5.2).
    `signatures` may be TensorFlow's SignatureDef messages or ours: they are copied by their bytes."""
    if not fields:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF:
            raise invalid(f"Metadata field {field} is not supported")
    signature_map = tfproto.message_class("SignatureDefMap")()
    for key, signature in signatures.items():
        signature_map.signature_def[key].MergeFromString(signature.SerializeToString())
    response = tfproto.message_class("GetModelMetadataResponse")(model_spec=model_spec(name, version))
    packed = response.metadata[SIGNATURE_DEF]
    packed.type_url, packed.value = SIGNATURE_DEF_MAP_URL, signature_map.SerializeToString()
    return response


def to_dict(message) -> dict:
    """Protobuf JSON as TF Serving prints it: proto field names, fields with defaults included."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def metadata_json(response) -> dict:
    """The REST body: the SignatureDefMap unpacked in place of the Any (docs/tf-serving.md §4.4)."""
    signature_map = tfproto.parse_binary("SignatureDefMap", response.metadata[SIGNATURE_DEF].value)
    return {"model_spec": to_dict(response.model_spec), "metadata": {SIGNATURE_DEF: to_dict(signature_map)}}
