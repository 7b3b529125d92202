"""`--write-golden N`: the N worst rows the artifact still reproduces and a seeded random sample of N
rows, written as the artifact's golden requests (docs/architecture.md "Golden requests") with the
source's answers, atomically: a temp file in the same directory renamed over the old one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from tfsconvert import golden, rest_codec
from tfsconvert.errors import InputError
from tfsconvert.naming import GOLDEN_FILE
from tfsconvert.parity.plan import SIGNATURE, Job


def target(version: Path, force: bool) -> Path:
    """The golden file to write; InputError when one exists and `force` is not given (before any work)."""
    path = version / GOLDEN_FILE
    if path.exists() and not force:
        raise InputError("golden-exists", f"{path} already exists",
                         "pass --force to replace it (the old file stays untouched until the new one is complete)")
    return path


def records(job: Job, rows: list[dict], signature=None) -> list[golden.GoldenRecord]:
    """Golden records of the kept rows (the worst first, then the sample), ids `parity-<partition>-<row>`."""
    out = []
    for row in rows:
        expected = {name: rest_codec.decode_tensor(value, job.fields[name]) for name, value in row["expected"].items()}
        ident = "parity-" + row["row"].replace(":", "-")
        if job.tabular:
            instance = {c.name: rest_codec.encode_tensor(np.asarray(row["inputs"][c.name], dtype=object if c.string
                                                                else np.float64), c.dtype, c.name)
                        for c in job.columns}
            prediction = {name: rest_codec.encode_tensor(value.reshape(()), job.fields[name], name)
                          for name, value in expected.items()}
            request, response = {"instances": [instance]}, {"predictions": [prediction]}
        else:
            feeds = {c.name: rest_codec.decode_tensor(row["inputs"][c.name], c.dtype)[None] for c in job.columns}
            request = rest_codec.rest_request(feeds, signature.inputs, SIGNATURE)
            response = rest_codec.rest_response({k: v[None] for k, v in expected.items()}, signature.outputs)
        out.append(golden.GoldenRecord(ident, SIGNATURE, request, response, rtol=job.rtol, atol=job.atol))
    return out


def write(path: Path, written: list[golden.GoldenRecord]) -> None:
    """Write `written` to `path` through a temp file and a rename: no partial file, ever."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".golden-", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        golden.write_golden(Path(temp), written)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
