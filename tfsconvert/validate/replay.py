"""Golden replay: send each golden request over REST and gRPC, compare the answers.

Comparison order follows docs/architecture.md "Conventions": output names, then dtypes and shapes, then values within
rtol/atol, every mismatch reported. A request the server refuses becomes the finding that says
why (`input-alias-not-found` with "did you mean", `missing-input`, `dtype-mismatch`,
`shape-mismatch`, `signature-not-found`).
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsconvert import tfproto
from tfsconvert.compare import OutputDiff, compare
from tfsconvert.dtypes import dtype_name
from tfsconvert.findings import finding
from tfsconvert.golden import GoldenRecord
from tfsconvert.model import Finding, Signature, TensorSpec
from tfsconvert.naming import API_KEYS, DEFAULT_SIGNATURE, REGRESS_METHOD, SERVE_TAGS
from tfsconvert.rest_codec import example_request, response_tensors, rest_request, results_tensors, sent_tensors
from tfsconvert.samples import synthesize
from tfsconvert.validate.client import Answer

# When neither the golden line nor the flags say (docs/architecture.md "Golden requests").
DEFAULT_RTOL, DEFAULT_ATOL = 1e-5, 1e-6
# Server messages (docs/tf-serving.md §3.2, §7 cases 38-40) that say the request's values, not its names, are wrong.
_MEMORY_SIGNS = re.compile(r"OOM when allocating|std::bad_alloc|MemoryError|Cannot allocate memory")
_DTYPE_SIGNS = re.compile(r"is not of expected type|Expects arg\[\d+\] to be|to type: |cannot be converted|"
                          r"expected type|DataType", re.I)
_SHAPE_SIGNS = re.compile(r"shape|size-incompatible|Expecting tensor size|dimension|rank|Matrix size", re.I)
_TIMEOUT_STATUSES = ("DEADLINE_EXCEEDED", "504", "timeout")


@dataclass
class GoldenResult:
    """One golden request over one protocol."""

    id: str
    protocol: str
    signature_name: str
    ok: bool
    seconds: float
    outputs: list[OutputDiff] = field(default_factory=list)
    finding: Finding | None = None
    values_checked: bool = True
    engine: str | None = None  # the PMML engine that answered (jpmml, pypmml), else None

    def to_json(self) -> dict:
        return {"id": self.id, "protocol": self.protocol, "engine": self.engine,
                "signature_name": self.signature_name, "ok": self.ok,
                "seconds": round(self.seconds, 6), "values_checked": self.values_checked,
                "outputs": [d.to_json() for d in self.outputs],
                "finding": self.finding.to_json() if self.finding else None}


@dataclass
class Tolerance:
    """--rtol/--atol override the golden file's; the defaults apply where neither says."""

    rtol: float | None = None
    atol: float | None = None

    def of(self, record: GoldenRecord) -> tuple[float, float]:
        rtol = self.rtol if self.rtol is not None else record.rtol
        atol = self.atol if self.atol is not None else record.atol
        return (DEFAULT_RTOL if rtol is None else rtol), (DEFAULT_ATOL if atol is None else atol)


def signatures_from_metadata(body: dict) -> dict[str, Signature]:
    """The signatures of a REST metadata answer (docs/tf-serving.md §4.4)."""
    defs = body.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    return {name: Signature(sig.get("method_name"), _specs(sig.get("inputs", {})), _specs(sig.get("outputs", {})))
            for name, sig in defs.items()}


def _specs(tensors: dict) -> dict[str, TensorSpec]:
    out = {}
    for alias, info in tensors.items():
        shape_info = info.get("tensor_shape", {})
        shape = None if shape_info.get("unknown_rank") else [int(d.get("size", -1)) for d in shape_info.get("dim", [])]
        out[alias] = TensorSpec(info.get("dtype", "DT_INVALID"), shape, info.get("name"))
    return out


def serving_graph_def(version_dir: Path):
    """The GraphDef of a SavedModel's {serve} meta graph (read with tfsconvert.tfproto), or None."""
    pb = version_dir / "saved_model.pb"
    try:
        saved_model = tfproto.parse_binary("SavedModel", pb.read_bytes())
    except (OSError, tfproto.DecodeError):
        return None  # ONNX, PMML, or a text SavedModel: requests are made from the signature alone
    serve = sorted(SERVE_TAGS)
    return next((mg.graph_def for mg in saved_model.meta_graphs if sorted(mg.meta_info_def.tags) == serve), None)


def synthesized_records(signatures: dict[str, Signature], graph_def=None) -> list[GoldenRecord]:
    """One request per signature from its dtypes and shapes, when there is no golden file; the
    expected response is empty (only names, dtypes and shapes are checked). String inputs that
    `graph_def` parses as tf.Examples get valid examples; classify/regress signatures get a
    `:classify`/`:regress` body."""
    from tfsconvert.convert.example_inputs import example_json, graph_def_makers

    records = []
    for name, signature in signatures.items():
        if name.startswith("__") or not signature.inputs:  # __saved_model_init_op is not for clients
            continue
        if any(spec.dtype in ("DT_HALF", "DT_UINT16", "DT_INVALID") for spec in signature.inputs.values()):
            continue  # not expressible in a REST body (docs/tf-serving.md §7 case 42)
        strings = {alias: spec.name for alias, spec in signature.inputs.items() if spec.dtype == "DT_STRING"}
        makers = graph_def_makers(graph_def, strings) if graph_def is not None and strings else {}
        feeds = synthesize(signature.inputs, 1, makers=makers)[0]
        if signature.method in API_KEYS and "inputs" in makers:
            request = example_request([example_json(data) for data in feeds["inputs"].ravel()], name)
        else:
            request = rest_request(feeds, signature.inputs, name)
        records.append(GoldenRecord(f"synthesized-{name}", name, request, {}))
    return records


def api_verb(record: GoldenRecord, signature: Signature | None) -> str:
    """`predict`, or `classify`/`regress` for a record whose request holds tf.Examples (the verb is
    the signature's method; a record for an unknown signature goes to `:classify`, which says so)."""
    if "examples" not in record.request:
        return "predict"
    return "regress" if signature is not None and signature.method == REGRESS_METHOD else "classify"


def rest_body(record: GoldenRecord) -> dict:
    """The `:predict` body of a golden record, naming its signature unless it is the default."""
    body = dict(record.request)
    if record.signature_name != DEFAULT_SIGNATURE:
        body.setdefault("signature_name", record.signature_name)
    return body


class Replayer:
    """Replays records against one served version through the given clients."""

    def __init__(self, model: str, version: int, signatures: dict[str, Signature], rest=None, grpc=None,
                 tolerance: Tolerance = Tolerance(), path: str | None = None) -> None:
        self.model, self.version, self.signatures = model, version, signatures
        self.clients = {name: client for name, client in (("rest", rest), ("grpc", grpc)) if client is not None}
        self.tolerance = tolerance
        self.path = path

    def run(self, records: list[GoldenRecord], synthesized: bool = False) -> list[GoldenResult]:
        """Every record over every protocol; stops at the first timeout (the server is stuck)."""
        results = []
        for record in records:
            for protocol in self.clients:
                results.append(self.one(record, protocol, synthesized))
                if results[-1].finding is not None and results[-1].finding.code == "server-timeout":
                    return results
        return results

    def one(self, record: GoldenRecord, protocol: str, synthesized: bool = False) -> GoldenResult:
        started = time.perf_counter()
        signature = self.signatures.get(record.signature_name)
        try:
            answer = self._send(record, protocol, signature)
        except ValueError as error:  # the golden request itself cannot be encoded for this protocol
            answer = Answer(False, "client", error=f"cannot encode the golden request: {error}")
        except OSError as error:  # timeouts and dropped connections
            answer = Answer(False, "timeout" if isinstance(error, TimeoutError) else "connection", error=str(error))
        seconds = time.perf_counter() - started
        result = GoldenResult(record.id, protocol, record.signature_name, False, seconds,
                              values_checked=not synthesized)
        if not answer.ok:
            result.finding = self._refusal(record, signature, answer, protocol)
            return result
        return self._judge(result, record, signature, answer)

    def _send(self, record: GoldenRecord, protocol: str, signature: Signature | None) -> Answer:
        verb = api_verb(record, signature)
        if protocol == "rest":
            return self.clients["rest"].predict(self.model, self.version, rest_body(record), verb)
        if verb != "predict":
            return self.clients["grpc"].classify_or_regress(verb, self.model, self.version, record.signature_name,
                                                            record.request)
        inputs = sent_tensors(record.request, signature.inputs if signature else {})
        return self.clients["grpc"].predict(self.model, self.version, record.signature_name, inputs,
                                            {alias: dtype_name(array) for alias, array in inputs.items()})

    def _judge(self, result: GoldenResult, record: GoldenRecord, signature: Signature, answer: Answer
               ) -> GoldenResult:
        specs = signature.outputs if signature else {}
        verb = api_verb(record, signature)
        if verb != "predict":  # classes/scores or outputs, read from `results`
            specs = {alias: TensorSpec("DT_STRING" if alias == "classes" else "DT_FLOAT", None)
                     for alias in (("classes", "scores") if verb == "classify" else ("outputs",))}
        try:
            actual = (answer.outputs if answer.outputs is not None else
                      response_tensors(answer.body, specs) if verb == "predict" else
                      results_tensors(answer.body, verb == "classify"))
        except ValueError as error:
            result.finding = finding("golden-mismatch", f"golden request {record.id} ({result.protocol}): the "
                                     f"response cannot be read: {error}", "check the server", self.path)
            return result
        rtol, atol = self.tolerance.of(record)
        if result.values_checked:
            expected = (response_tensors(record.response, specs) if verb == "predict" else
                        results_tensors(record.response, verb == "classify"))
        else:  # synthesized: every declared output must come back; values are unknown
            expected = {alias: actual[alias] for alias in specs if alias in actual}
            expected.update({alias: np.zeros(0) for alias in specs if alias not in actual})
        result.outputs = compare(expected, actual, atol, rtol)
        result.ok = all(diff.ok for diff in result.outputs)
        if not result.ok:
            result.finding = self._mismatch(record, result)
        return result

    def _mismatch(self, record: GoldenRecord, result: GoldenResult) -> Finding:
        bad = [diff for diff in result.outputs if not diff.ok]
        parts = []
        for diff in bad:
            figures = "" if diff.max_abs is None else f" (max abs {diff.max_abs:.3g}" + (
                f", max rel {diff.max_rel:.3g})" if diff.max_rel is not None else ")")
            parts.append(f"{diff.alias}: {diff.problem}{figures}")
        return finding("golden-mismatch", f"golden request {record.id} ({result.protocol}, version {self.version}): "
                       + "; ".join(parts),
                       "if the model changed on purpose, re-convert it to record new golden requests; otherwise "
                       "compare this version with the one that produced the golden file (tolerances: --rtol/--atol)",
                       self.path)

    def _refusal(self, record: GoldenRecord, signature: Signature | None, answer: Answer, protocol: str) -> Finding:
        said = f"{protocol} {answer.status}: {answer.error}"
        where = f"golden request {record.id} ({protocol}, version {self.version})"
        if answer.status in _TIMEOUT_STATUSES:
            return finding("server-timeout", f"{where}: no answer ({said})",
                           "the model takes too long for one request: check it for loops or huge batches, or raise "
                           "--timeout", self.path)
        if _MEMORY_SIGNS.search(answer.error or ""):
            return finding("sandbox-limit", f"{where}: the request ran out of memory in the sandbox ({said})",
                           "the graph allocates more than --memory-mb allows for one request: send smaller batches, "
                           "fix the graph, or raise --memory-mb if that is expected", self.path)
        if signature is None:
            return self._unknown_signature(record, where, said)
        expected = list(signature.inputs)
        sent = _sent_aliases(record.request, expected)
        unknown = [alias for alias in sent if alias not in signature.inputs]
        missing = [alias for alias in expected if alias not in sent]
        if unknown:
            return self._unknown_alias(record, unknown, expected, where, said)
        if missing:
            return finding("missing-input", f"{where}: no value for input {', '.join(missing)} of signature "
                           f"'{record.signature_name}'. Server said: {said}",
                           f"send every input of the signature: {', '.join(expected)}", self.path)
        if _DTYPE_SIGNS.search(answer.error or ""):
            return finding("dtype-mismatch", f"{where}: {said}",
                           "send values of each input's dtype: "
                           + ", ".join(f"{a} {s.dtype}" for a, s in signature.inputs.items()), self.path)
        if _SHAPE_SIGNS.search(answer.error or ""):
            return finding("shape-mismatch", f"{where}: {said}",
                           "send tensors of each input's shape: "
                           + ", ".join(f"{a} {s.shape}" for a, s in signature.inputs.items()), self.path)
        return finding("golden-mismatch", f"{where}: the server refused the request ({said})",
                       "replay it by hand with curl to see the server's answer; see the server log with --debug",
                       self.path)

    def _unknown_alias(self, record: GoldenRecord, unknown: list[str], expected: list[str], where: str,
                       said: str) -> Finding:
        guesses = {alias: difflib.get_close_matches(alias, expected, n=1, cutoff=0.0)[0] for alias in unknown}
        mean = " ".join(f"Did you mean '{guess}' for '{alias}'?" for alias, guess in guesses.items())
        hint = f"send the signature's aliases ({', '.join(expected)})"
        if self.path and Path(self.path, "saved_model.pb").is_file():
            renames = " ".join(f"--input {alias}={guess}" for alias, guess in guesses.items())
            hint += (f", or rename the model's inputs to what clients send: tfsconvert saved-model {self.path} "
                     f"{renames} --base-path <base path>")
        return finding("input-alias-not-found",
                       f"{where}: input alias {', '.join(repr(a) for a in unknown)} is not in signature "
                       f"'{record.signature_name}' (its inputs: {', '.join(expected)}). {mean} Server said: {said}",
                       hint, self.path)

    def _unknown_signature(self, record: GoldenRecord, where: str, said: str) -> Finding:
        names = list(self.signatures)
        guess = difflib.get_close_matches(record.signature_name, names, n=1, cutoff=0.0)
        return finding("signature-not-found",
                       f"{where}: signature '{record.signature_name}' is not in the model (its signatures: "
                       f"{', '.join(names) or 'none'}). Server said: {said}",
                       f"call one of {', '.join(names)}" + (f" (did you mean '{guess[0]}'?)" if guess else "")
                       + "; or name the signature when converting: tfsconvert saved-model ... --signature-name "
                       f"{record.signature_name}", self.path)


def _sent_aliases(body: dict, expected: list[str]) -> list[str]:
    """The input aliases a request names; a bare tensor is the one input of a one-input signature."""
    value = body.get("inputs", body.get("instances"))
    if isinstance(value, list) and value:
        value = value[0] if "instances" in body and "inputs" not in body else value
    if isinstance(value, dict) and "b64" not in value:
        return list(value)
    return expected[:1] if len(expected) == 1 else []
