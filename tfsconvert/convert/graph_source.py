"""TF1 graph sources (frozen GraphDef, checkpoint): a graph and a session, tensors by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfsconvert import graph as graph_analysis
from tfsconvert.convert.names import alias_for, not_found
from tfsconvert.convert.tf_source import TfSource, spec_of
from tfsconvert.errors import InputError
from tfsconvert.model import Signature
from tfsconvert.naming import PREDICT_METHOD, SERVE_TAGS
from tfsconvert.runtimes.tf import quiet_tf
from tfsconvert.samples import ValueMaker


class GraphSource(TfSource):
    """A TF1 graph in a session; inputs are fed tensors, outputs fetched tensors."""

    def __init__(self, path: Path, kind: str, graph, session) -> None:
        super().__init__(path)
        self.kind, self.graph, self.session = kind, graph, session
        self.inputs: dict[str, object] = {}
        self.outputs: dict[str, object] = {}
        self._names: dict[str, str] = {}

    def _tensor(self, name: str, flag: str):
        try:
            return self.graph.get_tensor_by_name(name if ":" in name else name + ":0")
        except (KeyError, ValueError):
            ops = [op.name for op in self.graph.get_operations()]
            raise not_found("tensor", name, ops, str(self.path), flag) from None

    def _candidate_outputs(self, graph_def) -> dict[str, object]:
        sinks = list(graph_analysis.sinks(graph_def))
        if len(sinks) == 1:
            return {alias_for(sinks[0]): self.graph.get_tensor_by_name(sinks[0] + ":0")}
        if not sinks:
            raise InputError("no-outputs", f"{self.path} has no candidate output (every node feeds another)",
                             "name the outputs: --output probabilities=NODE:0")
        flags = " ".join(f"--output {alias_for(s)}={s}:0" for s in sinks)
        raise InputError("ambiguous-outputs",
                         f"{self.path} has {len(sinks)} candidate outputs ({', '.join(sinks)}); "
                         f"which ones are served is your choice", f"name them, e.g. {flags}")

    def _walk(self, fetches: list, fed: set) -> tuple[set, list, list]:
        """Fed tensors the fetches depend on, the Placeholders they still need, and the
        PlaceholderWithDefault inputs they reach unfed (those run on their defaults)."""
        reached, placeholders, optional, seen = set(), [], [], set()
        stack = [t.op for t in fetches]
        while stack:
            op = stack.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type in graph_analysis.REQUIRED_INPUT_OPS:
                placeholders.append(op)
            elif op.type in graph_analysis.OPTIONAL_INPUT_OPS:
                optional.append(op)
            for tensor in op.inputs:
                if tensor.name in fed:
                    reached.add(tensor.name)
                else:
                    stack.append(tensor.op)
        return reached, *(sorted(ops, key=lambda op: op.name) for ops in (placeholders, optional))

    def resolve(self, inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
        graph_def = self.graph.as_graph_def()
        self.outputs = ({alias: self._tensor(name, "--output") for alias, name in outputs.items()}
                        or self._candidate_outputs(graph_def))
        fed = {alias: self._tensor(name, "--input") for alias, name in inputs.items()}
        reached, needed, defaulted = self._walk(list(self.outputs.values()), {t.name for t in fed.values()})
        for alias, tensor in fed.items():
            if tensor.name not in reached and tensor not in self.outputs.values():
                raise InputError(
                    "input-not-connected",
                    f"--input {alias}={inputs[alias]}: {tensor.name} does not feed the outputs "
                    f"({', '.join(t.name for t in self.outputs.values())}) in {self.path}",
                    "drop that --input, or choose outputs it feeds with --output ALIAS=TENSOR")
        if fed and needed:
            flags = " ".join(f"--input {alias_for(op.name)}={op.name}:0" for op in needed)
            raise InputError(
                "missing-input",
                f"placeholder {', '.join(op.name for op in needed)} feeds the outputs but is not an --input",
                f"add {flags}")
        self.inputs = fed or {alias_for(op.name): op.outputs[0] for op in needed}
        if defaulted:
            self.notes.append(_defaults_note(self.inputs, defaulted, graph_analysis.optional_inputs(graph_def)))
        self._names = {alias: t.name for alias, t in (*self.inputs.items(), *self.outputs.items())}
        return Signature(PREDICT_METHOD, {a: spec_of(t) for a, t in self.inputs.items()},
                         {a: spec_of(t) for a, t in self.outputs.items()})

    def source_names(self) -> dict[str, str]:
        return self._names

    def close(self) -> None:
        """Close the session and drop the graph (called again at the end: then a no-op)."""
        if self.session is not None:
            self.session.close()
        self.session = self.graph = None
        self.inputs, self.outputs = {}, {}

    def value_makers(self) -> dict[str, ValueMaker]:
        from tfsconvert.convert.input_meaning import graph_makers

        return graph_makers(self.graph, self.inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        aliases = list(self.outputs)
        values = self.session.run([self.outputs[a] for a in aliases],
                                  {self.inputs[a]: value for a, value in feeds.items()})
        return dict(zip(aliases, values))

    def write_savedmodel(self, dest: Path, signature_name: str) -> None:
        with quiet_tf() as tf, self.graph.as_default():
            v1 = tf.compat.v1.saved_model
            signature = v1.signature_def_utils.build_signature_def(
                inputs={a: v1.utils.build_tensor_info(t) for a, t in self.inputs.items()},
                outputs={a: v1.utils.build_tensor_info(t) for a, t in self.outputs.items()},
                method_name=PREDICT_METHOD)
            builder = v1.Builder(str(dest))
            # Default-valued attrs are stripped so an older TF Serving can still load the graph.
            builder.add_meta_graph_and_variables(self.session, list(SERVE_TAGS),
                                                 signature_def_map={signature_name: signature},
                                                 strip_default_attrs=True)
            builder.save()


def _defaults_note(inputs: dict[str, object], ops: list, optional: dict[str, dict]) -> str:
    """The summary line for PlaceholderWithDefault inputs left out of the signature, with the complete
    `--input` flags that would serve them (explicit flags must name every input)."""
    shown = ", ".join(op.name if optional.get(op.name, {}).get("default") is None
                      else f"{op.name}={json.dumps(optional[op.name]['default'])}" for op in ops)
    flags = " ".join([f"--input {alias}={tensor.name}" for alias, tensor in inputs.items()]
                     + [f"--input {alias_for(op.name)}={op.name}:0" for op in ops])
    return (f"optional inputs left at their defaults and not in the signature: {shown} "
            f"(to let clients set them, add {flags}; they are then required in every request)")
