#!/usr/bin/env bash
# `make demo`: build the fixture models, then show what tfsconvert says about good models and
# about each of the three classic deployment errors. Later issues extend it to convert + validate.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
TFS=$PWD/.venv/bin/tfsconvert

section() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
# inspect FIXTURE [ARGS...]: run from the fixture's directory so paths stay short.
inspect() {
  local path; path=$("$PY" -m fixtures path "$1")
  printf '$ tfsconvert inspect %s %s\n' "$(basename "$path")" "${*:2}"
  (cd "$(dirname "$path")" && "$TFS" inspect "$(basename "$path")" "${@:2}")
}

echo "building fixture models (cached after the first run)..."
"$PY" -m fixtures build 2>/dev/null

section "Error 1, wrong artifact type: a frozen GraphDef is not a SavedModel"
inspect frozen_mlp_pb

section "Error 1 again: the frozen graph copied into a version dir as saved_model.pb"
inspect broken_frozen_as_savedmodel

section "Error 2, no version directory: SavedModels in v1/, 1.0/, latest/"
inspect broken_nonnumeric_versions

section "Errors 2 and 3: a Keras 3 model.export() with generic names, outside a version dir"
inspect keras_export_savedmodel

section "A correct TF Serving base path"
inspect savedmodel_base

section "ONNX"
inspect onnx_model

section "PMML from sklearn2pmml"
inspect pmml_model

section "scikit-learn pipeline (loaded with a restricted unpickler)"
inspect sklearn_pipeline

section "Machine-readable output"
inspect broken_duplicate_versions --json
