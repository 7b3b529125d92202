"""Native model files of the gradient-boosting libraries, loaded as their scikit-learn estimators:
XGBoost's `Booster.save_model` (.json, .ubj) and LightGBM's booster dump (.txt). Their feature names
come from the file. Nothing heavy is imported until a file is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path

from tfsconvert.errors import EnvironmentProblem, InputError

_CLASSIFIER_OBJECTIVES = {"binary", "multiclass", "multiclassova", "softmax", "ova", "multi_logloss"}


def native_kind(path: Path) -> str | None:
    """"xgboost" or "lightgbm" when `path` is one of their native model files, else None (reads 256 bytes)."""
    if path.suffix not in (".json", ".ubj", ".txt") or not path.is_file():
        return None
    with path.open("rb") as handle:
        head = handle.read(256)
    if path.suffix == ".txt":
        return "lightgbm" if head.startswith(b"tree\nversion=v") else None
    return "xgboost" if head.lstrip().startswith(b"{") and b"learner" in head else None


def load(path: Path, kind: str):
    """The fitted XGBClassifier/XGBRegressor or LGBMClassifier/LGBMRegressor the file holds."""
    try:
        return _xgboost(path) if kind == "xgboost" else _lightgbm(path)
    except ImportError:
        pin = {"xgboost": "3.2.0", "lightgbm": "4.7.0"}[kind]
        raise EnvironmentProblem("missing-dependency", f"{path} is a native {kind} model file, and the Python "
                                 f"package '{kind}' is not installed",
                                 f"pip install 'tfsconvert[{kind}]'  (or pip install {kind}=={pin})") from None
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - the libraries' own parse errors
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise InputError("corrupt-model-file", f"{path} cannot be read by {kind}: {first}",
                         f"re-save it with the {kind} version installed here (save_model)") from None


def _xgboost(path: Path):
    import json

    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    model = (xgboost.XGBClassifier if objective.startswith(("binary:", "multi:")) else xgboost.XGBRegressor)()
    model.load_model(str(path))  # restores classes_ (0..k-1) and the feature names of the file
    return model


def _lightgbm(path: Path):
    import lightgbm
    import numpy as np
    from sklearn.preprocessing import LabelEncoder

    header = path.read_text(encoding="utf-8", errors="replace").split("\nTree=", 1)[0]
    fields = dict(re.findall(r"^(\w+)=(.*)$", header, re.MULTILINE))
    objective = fields.get("objective", "regression").split()[0]
    booster = lightgbm.Booster(model_file=str(path))
    classifier = objective in _CLASSIFIER_OBJECTIVES
    model = lightgbm.LGBMClassifier() if classifier else lightgbm.LGBMRegressor()
    # What LGBMModel.fit sets; the booster itself carries the trees and the feature names.
    model._Booster, model.fitted_, model._objective = booster, True, objective
    model._n_features = model._n_features_in = booster.num_feature()
    # names LightGBM made up for an unnamed array are Column_0..N; anything else was the DataFrame's
    model._fitted_with_feature_names = not all(re.fullmatch(r"Column_\d+", n) for n in booster.feature_name())
    if classifier:
        count = max(int(fields.get("num_class", "1")), 2)
        model._classes, model._n_classes = np.arange(count), count
        model._le = LabelEncoder().fit(model._classes)
    return model
