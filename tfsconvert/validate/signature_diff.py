"""`breaking-signature-change`: what clients of version N-1 lose when version N becomes latest.

TF Serving routes requests without a version to the highest available one (docs/tf-serving.md §4.2), so once
N loads, every client written against N-1 talks to N. Breaking, per signature of N-1:
- the signature is gone, or its method changed (classify/regress clients);
- an input alias is removed or renamed, or a new one is required (REST needs every input, §4.5);
- an output alias is removed or renamed, or the count goes from one to several or back (REST
  names outputs only when there are several, §4.6);
- a dtype changes (JSON values are converted to the signature's dtype, §3.2);
- a shape change clients can see: another rank, a fixed dimension with another size, or an input
  dimension that was free (-1) and is now fixed. Freeing a dimension is not breaking, and an
  unknown rank on either side is not judged. TF Serving itself validates no shapes (§3.2): the
  model's ops fail instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfsconvert.findings import finding
from tfsconvert.layout import next_version
from tfsconvert.model import Finding, Signature, TensorSpec, VersionInfo
from tfsconvert.naming import DEFAULT_SIGNATURE


@dataclass
class _Diff:
    """The changes of one signature, and the renames a `--input/--output OLD=NEW` flag can undo."""

    changes: list[str] = field(default_factory=list)
    renames: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {"input": [], "output": []})

    @property
    def only_renames(self) -> bool:
        return len(self.changes) == sum(map(len, self.renames.values()))


def breaking_changes(base: Path, newer: VersionInfo, older: VersionInfo, fmt: str) -> list[Finding]:
    """One finding per signature of `older` that `newer` breaks (`fmt`: the newer version's format)."""
    findings = []
    for key, old_sig in older.signatures.items():
        new_sig = newer.signatures.get(key)
        diff = _Diff(changes=[f"signature '{key}' was removed"]) if new_sig is None else _diff(old_sig, new_sig)
        if diff.changes:
            findings.append(finding(
                "breaking-signature-change",
                f"version {newer.version} of {base} breaks clients of version {older.version}, signature '{key}': "
                + "; ".join(diff.changes),
                _hint(base, newer, key, diff, fmt), newer.path,
                tf_serving=f"serves version {newer.version} as the latest: requests without a version, written for "
                           f"version {older.version}, reach it and fail (or misread the response)"))
    return findings


def _diff(old: Signature, new: Signature) -> _Diff:
    diff = _Diff()
    if (old.method or "") != (new.method or ""):
        diff.changes.append(f"method {old.method} -> {new.method}")
    for kind, before, after in (("input", old.inputs, new.inputs), ("output", old.outputs, new.outputs)):
        _diff_tensors(diff, kind, before, after)
    if (len(old.outputs) == 1) != (len(new.outputs) == 1) and new.outputs:
        shape = {True: '{"outputs": <tensor>}', False: '{"outputs": {"<alias>": <tensor>, ...}}'}
        diff.changes.append(f"REST responses change from {shape[len(old.outputs) == 1]} to "
                            f"{shape[len(new.outputs) == 1]} ({len(old.outputs)} -> {len(new.outputs)} outputs)")
    return diff


def _diff_tensors(diff: _Diff, kind: str, before: dict[str, TensorSpec], after: dict[str, TensorSpec]) -> None:
    removed = [a for a in before if a not in after]
    added = [a for a in after if a not in before]
    for alias in removed:
        twin = next((a for a in added if _same_type(before[alias], after[a])), None)
        if twin is None:
            diff.changes.append(f"{kind} '{alias}' was removed")
            continue
        added.remove(twin)
        diff.changes.append(f"{kind} '{alias}' was renamed to '{twin}'")
        diff.renames[kind].append((alias, twin))
    if kind == "input":  # a new output is harmless; a new input is one old clients do not send
        diff.changes += [f"new required input '{alias}'" for alias in added]
    for alias in (a for a in before if a in after):
        old, new = before[alias], after[alias]
        if old.dtype != new.dtype:
            diff.changes.append(f"{kind} '{alias}' dtype {old.dtype} -> {new.dtype}")
        if _shape_breaks(old.shape, new.shape, tightening_breaks=kind == "input"):
            diff.changes.append(f"{kind} '{alias}' shape {old.shape} -> {new.shape}")


def _same_type(a: TensorSpec, b: TensorSpec) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape


def _shape_breaks(old: list[int] | None, new: list[int] | None, tightening_breaks: bool) -> bool:
    if old is None or new is None:
        return False
    if len(old) != len(new):
        return True
    for was, now in zip(old, new):
        if was >= 0 and now >= 0 and was != now:
            return True
        if tightening_breaks and was < 0 <= now:
            return True
    return False


def _hint(base: Path, newer: VersionInfo, key: str, diff: _Diff, fmt: str) -> str:
    """Undo pure renames with `tfsconvert saved-model`; otherwise serve N as a new model."""
    new_model = f"{base}-v{newer.version}"
    move = (f"serve version {newer.version} as a new model and move clients to it when they are ready: "
            f"mkdir -p {new_model} && mv {newer.path} {new_model}/1")
    if not (diff.only_renames and fmt == "savedmodel" and len(newer.signatures) == 1):
        return move
    flags = [f"--input {old}={new}" for old, new in diff.renames["input"]]
    if diff.renames["output"]:  # --output flags list the outputs exactly (docs/convert.md)
        back = dict((new, old) for old, new in diff.renames["output"])
        flags += [f"--output {back.get(alias, alias)}={alias}" for alias in newer.signatures[key].outputs]
    if key != DEFAULT_SIGNATURE:
        flags += [f"--source-signature {key}", f"--signature-name {key}"]
    return (f"keep the old names in a new version: tfsconvert saved-model {newer.path} --base-path {base} "
            f"--version {next_version(base)} {' '.join(flags)}  (or {move})")
