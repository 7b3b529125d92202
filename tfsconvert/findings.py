"""The stable finding codes (docs/architecture.md "Finding codes") with their default severities."""

from __future__ import annotations

from tfsconvert.model import Finding

SEVERITY = {
    "not-a-savedmodel": "error",
    "no-version-directory": "error",
    "bad-version-name": "warning",
    "duplicate-version": "warning",
    "missing-serve-tag": "error",
    "missing-default-signature": "warning",
    "unnamed-signature-io": "warning",
    "missing-variables": "error",
    "corrupt-model-file": "error",
    "load-failed": "error",
    "unknown-op": "error",
    "input-alias-not-found": "error",
    "missing-input": "error",
    "dtype-mismatch": "error",
    "shape-mismatch": "error",
    "golden-mismatch": "error",
    "signature-not-found": "error",
    "bad-warmup-file": "error",
    "breaking-signature-change": "error",
    "sandbox-limit": "error",
    "server-timeout": "error",
    "sandbox-weak": "warning",
    "unsafe-file": "error",
    # validate's static checks (docs/findings.md)
    "bad-model-config": "error",
    "base-path-not-found": "error",
    "bad-golden-file": "warning",
    # validate's replay: no golden file, so a synthesized request only checked names, dtypes, shapes
    "values-not-checked": "info",
    # PMML evaluated with JPMML-Evaluator and pypmml (conversion parity, validate): their answers differ
    "pmml-evaluators-disagree": "warning",
}


def finding(code: str, message: str, hint: str, path=None, severity: str | None = None,
            tf_serving: str | None = None) -> Finding:
    """A Finding with the code's default severity unless one is given."""
    if code not in SEVERITY:
        raise ValueError(f"unknown finding code {code!r}")
    return Finding(code, severity or SEVERITY[code], message, hint, None if path is None else str(path), tf_serving)
