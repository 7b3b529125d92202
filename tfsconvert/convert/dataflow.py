"""Where a tensor's data flows in a TensorFlow graph, into and out of function bodies.

A TF2 export keeps its model in functions (`StatefulPartitionedCall`), and `tf.map_fn` or
`tf.cond` put what they run in further ones (`While` body, `If` branches), so following a
signature input to the op that reads it means entering those bodies and returning from them.
Works on the GraphDef protos (nodes by name, `_output_shapes` where recorded); no session runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

# Ops that call functions: attr names of the callee(s), and how many leading inputs are not arguments.
_CALLS = {"PartitionedCall": ("f", 0), "StatefulPartitionedCall": ("f", 0),
          "While": ("body", 0), "StatelessWhile": ("body", 0),
          "If": ("then_branch else_branch", 1), "StatelessIf": ("then_branch else_branch", 1),
          "Case": ("branches", 1), "StatelessCase": ("branches", 1)}


@dataclass
class Scope:
    """The top-level graph (`name` None) or one function body: its nodes and who consumes what."""

    name: str | None
    nodes: dict  # node name -> NodeDef
    args: list[str] = field(default_factory=list)  # a function's input argument names, in order
    returned: set[str] = field(default_factory=set)  # node (or argument) names a function returns
    consumers: dict[str, list[tuple[object, int]]] = field(default_factory=dict)  # name -> (NodeDef, position)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            for position, ref in enumerate(node.input):
                if not ref.startswith("^"):
                    self.consumers.setdefault(ref.split(":")[0], []).append((node, position))


@dataclass(frozen=True)
class Place:
    """A node (or function argument) `name` in function `scope` (None: the top-level graph), reached
    through `frames`: the (scope, calling node) pairs of the calls entered on the way."""

    scope: str | None
    name: str
    frames: tuple[tuple[str | None, str], ...] = ()


class Library:
    """A GraphDef and its function library, scopes built on first use."""

    def __init__(self, graph_def) -> None:
        self.functions = {f.signature.name: f for f in graph_def.library.function}
        self._scopes = {None: Scope(None, {node.name: node for node in graph_def.node})}

    def scope(self, name: str | None) -> Scope:
        if name not in self._scopes:
            function = self.functions[name]
            self._scopes[name] = Scope(
                name, {node.name: node for node in function.node_def}, [a.name for a in function.signature.input_arg],
                {ref.split(":")[0] for ref in function.ret.values()})
        return self._scopes[name]

    def node(self, place: Place):
        """The NodeDef at `place`, None for a function argument."""
        return self.scope(place.scope).nodes.get(place.name)

    def input_node(self, place: Place, position: int):
        """The NodeDef feeding data input `position` of the node at `place` (None: an argument)."""
        ref = self.node(place).input[position]
        return self.scope(place.scope).nodes.get(ref.split(":")[0])

    def callees(self, node) -> tuple[list[str], int]:
        """Functions `node` calls and how many of its leading inputs are not their arguments."""
        if node.op in self.functions:
            return [node.op], 0
        attrs, skipped = _CALLS.get(node.op, ("", 0))
        names = []
        for attr in attrs.split():
            value = node.attr[attr]
            names += [value.func.name] if value.HasField("func") else [f.name for f in value.list.func]
        return [n for n in names if n in self.functions], skipped

    def flows(self, start: Place, through: frozenset[str]) -> Iterator[tuple[Place, object]]:
        """Every node the data of `start` reaches, nearest first, as (place, NodeDef).

        The walk continues past nodes whose op is in `through` (and past function calls, into the
        argument the data enters and back out to the caller from a returned value); other nodes are
        reported but not walked past.
        """
        queue, seen = deque([start]), {start}

        def visit(place: Place) -> None:
            if place not in seen:
                seen.add(place)
                queue.append(place)

        while queue:
            place = queue.popleft()
            scope = self.scope(place.scope)
            if place.frames and place.name in scope.returned:
                caller_scope, caller = place.frames[-1]
                visit(Place(caller_scope, caller, place.frames[:-1]))
            for node, position in scope.consumers.get(place.name, []):
                callees, skipped = self.callees(node)
                if callees and position >= skipped:
                    frames = (*place.frames, (place.scope, node.name))
                    for callee in callees:
                        visit(Place(callee, self.scope(callee).args[position - skipped], frames))
                    continue
                reached = Place(place.scope, node.name, place.frames)
                if reached in seen:
                    continue
                seen.add(reached)
                yield reached, node
                if node.op in through:
                    queue.append(reached)


def output_shape(node, index: int = 0) -> list[int] | None:
    """The recorded static shape of output `index` (-1 for unknown dims), None when not recorded."""
    shapes = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []
    if index >= len(shapes) or shapes[index].unknown_rank:
        return None
    return [dim.size for dim in shapes[index].dim]
