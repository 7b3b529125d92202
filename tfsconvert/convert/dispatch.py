"""Which converter handles a source: scikit-learn pickles go to tabular_convert, TensorFlow
formats to tf_convert. Options meant for the other family are refused, not silently ignored."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.result import ConversionResult, Progress
from tfsconvert.errors import InputError
from tfsconvert.inspect.detect import detect

# Options that only one family of sources takes (option name -> default), to refuse the others clearly.
_TF_ONLY = {"inputs": ("--input", ()), "outputs": ("--output", ()), "source_signature": ("--source-signature", None),
            "sample_inputs": ("--sample-inputs", None)}
_TABULAR_ONLY = {"sample_data": ("--sample-data", None), "feature_names": ("--feature-names", None),
                 "target_name": ("--target-name", None), "trust_pickle": ("--trust-pickle", False)}


def _refuse_options(options: dict, unwanted: dict, kind: str) -> None:
    given = [flag for key, (flag, default) in unwanted.items()
             if (value := options.pop(key, default)) is not None and value != default and value != []]
    if given:
        raise InputError("bad-option", f"{', '.join(given)} cannot be used with {kind}",
                         f"leave out {', '.join(given)}")


def convert(src: Path, target: str, options: dict, progress: Progress) -> ConversionResult:
    """Run the converter for `src`'s family; `options` are the command's keyword options."""
    if target == "pmml" or (target == "onnx" and detect(src) == "sklearn"):
        from tfsconvert.convert import tabular_convert

        _refuse_options(options, _TF_ONLY, "a scikit-learn source")
        return tabular_convert.convert(src, target, tabular_convert.TabularOptions(**options), progress)
    from tfsconvert.convert import tf_convert

    _refuse_options(options, _TABULAR_ONLY, "a TensorFlow source (they are for scikit-learn pickles)")
    options["inputs"], options["outputs"] = tuple(options["inputs"] or ()), tuple(options["outputs"] or ())
    return tf_convert.convert(src, target, tf_convert.ConvertOptions(**options), progress)
