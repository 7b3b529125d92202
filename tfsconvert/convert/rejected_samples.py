"""The error for sample inputs the source model itself refuses (a TensorFlow OpError while it runs).

That is bad input, not a crash: made-up strings the graph parses as numbers, images of the wrong
size, or a user's own samples that do not fit. The one-line error names the input, the op that
refused it and TensorFlow's reason, and says how to give real values.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tfsconvert.errors import InputError
from tfsconvert.model import Signature
from tfsconvert.samples import ValueMaker

_NODE = re.compile(r"\{\{node ([^}]+)\}\}")


def rejected(source: Path, error, sample: dict[str, np.ndarray], signature: Signature,
             makers: dict[str, ValueMaker], sample_file: Path | None, index: int) -> InputError:
    """InputError `samples-rejected` for the tf.errors.OpError the source raised on `sample`."""
    where = _where(error)
    if sample_file is not None:
        return InputError("samples-rejected", f"{source} rejects sample {index} of {sample_file}: {where}",
                          "correct that sample in the file (`tfsconvert inspect SRC` shows what each input must hold)")
    strings = [alias for alias, spec in signature.inputs.items() if spec.dtype == "DT_STRING"]
    guessed = [alias for alias in strings if alias not in makers]
    if guessed:
        value = sample[guessed[0]].ravel()[0].decode("utf-8", "replace")
        what = (f"string input {_listed(guessed)} holds something its graph does not show; the made-up value "
                f"{value!r} is rejected by {where}")
    else:
        what = f"the made-up values of input {_listed(list(makers) or list(signature.inputs))} are rejected by {where}"
    example = ", ".join(f'"{alias}": [...]' for alias in guessed or signature.inputs)
    return InputError("samples-rejected", f"{source}: {what}",
                      f"pass --sample-inputs FILE with real values: JSON {{{example}}} (first axis: one entry per "
                      f"sample), a TF Serving REST body, or .npz")


def _where(error) -> str:
    """`TYPE op 'NODE': REASON` from a tf.errors.OpError (the type only when TensorFlow names the op)."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if _NODE.search(line)), len(lines))
    reason = lines[marker - 1] if marker > 0 else type(error).__name__
    nodes = _NODE.findall(error.message)
    name = nodes[-1] if nodes else (error.op.name if error.op is not None else "?")
    kind = f"{error.op.type} " if error.op is not None and error.op.name == name else ""
    return f"{kind}op '{name}': {reason}"


def _listed(aliases: list[str]) -> str:
    return ", ".join(f"'{alias}'" for alias in aliases)
