"""Signature aliases: `--input/--output ALIAS=TENSOR` flags, derived aliases, and naming errors."""

from __future__ import annotations

import difflib
import re

from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.model import Finding, Signature
from tfsconvert.naming import generic_aliases

# An alias becomes a key in REST bodies and, for Keras sources, a placeholder op name.
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def parse_mapping(values: list[str] | tuple[str, ...], flag: str) -> dict[str, str]:
    """`["probs=Softmax:0", ...]` -> {"probs": "Softmax:0"}, in the order given."""
    mapping: dict[str, str] = {}
    for value in values:
        alias, sep, tensor = value.partition("=")
        alias, tensor = alias.strip(), tensor.strip()
        if not sep or not alias or not tensor:
            raise InputError("bad-name-mapping", f"{flag} {value!r} is not ALIAS=TENSOR",
                             f"write it as {flag} probabilities=Softmax:0 (the alias clients send = "
                             f"the tensor, op or old alias in the model)")
        if not _ALIAS.match(alias):
            raise InputError("bad-name-mapping", f"{flag} alias {alias!r} is not a valid signature name",
                             "use letters, digits, '_', '.' and '-', starting with a letter or '_'")
        if alias in mapping:
            raise InputError("bad-name-mapping", f"{flag} alias {alias!r} is given twice",
                             f"give each alias once: {flag} {alias}=TENSOR")
        mapping[alias] = tensor
    return mapping


def alias_for(name: str) -> str:
    """Derived alias: `dense/Softmax:0` -> `dense_Softmax` (output index 0 dropped)."""
    base = name[:-2] if name.endswith(":0") else name
    return base.replace("/", "_").replace(":", "_")


def not_found(kind: str, name: str, known: list[str], where: str, flag: str) -> InputError:
    """`name` is not among `known`: list the close matches, else what exists."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    listed = close or known[:10]
    label = "close matches" if close else "available"
    return InputError(
        "tensor-not-found", f"{kind} {name!r} does not exist in {where} ({label}: {', '.join(listed) or 'none'})",
        f"{flag} ALIAS={listed[0]}" if listed else f"check {flag} against `tfsconvert inspect {where}`")


def generic_findings(signature: Signature, source_names: dict[str, str], path) -> list[Finding]:
    """Warn about aliases that are still generic, with the exact flags that fix them.

    `source_names` maps each alias to the name a flag must refer to (tensor, layer or old alias).
    """
    generic = generic_aliases(signature)
    if not generic:
        return []
    flags = " ".join(f"{flag} NAME={source_names.get(alias, alias)}" for flag, alias in generic)
    return [finding(
        "unnamed-signature-io",
        f"the signature still uses generic aliases ({', '.join(a for _, a in generic)}); clients will guess "
        f"the wrong tensor names",
        f"convert again with {flags}  (NAME: what the tensor means, e.g. probabilities)", path)]
