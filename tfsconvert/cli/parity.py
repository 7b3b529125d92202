"""`tfsconvert parity`: score a whole data set with the source and the artifact on Spark (docs/parity.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from tfsconvert.cli.app import JSON, QUIET, app, gate_exit, pmml_evaluator_choice, run


@app.command("parity")
def parity(
    src: Path = typer.Argument(..., help="The source the artifact was converted from (any source the converters "
                                         "accept), the original file."),
    artifact: Path = typer.Argument(..., help="The converted version dir, or its base path (highest version)."),
    data: Path = typer.Option(..., "--data", help="Rows to score: Parquet (file or directory), CSV with a header, "
                                                  "or TFRecord files of tf.Example; columns named as the inputs."),
    atol: float = typer.Option(None, "--atol", help="Absolute tolerance (default: the conversion's for the target)."),
    rtol: float = typer.Option(None, "--rtol", help="Relative tolerance (default: the conversion's for the target)."),
    allow_flips: float = typer.Option(None, "--allow-flips", help="The share of rows per output that may differ "
                                                                  "(default 0)."),
    spark_master: str = typer.Option(None, "--spark-master", help="Spark master URL (default local[*])."),
    spark_conf: list[str] = typer.Option(None, "--spark-conf", help="KEY=VALUE Spark setting (repeatable)."),
    pmml_evaluator: str = typer.Option("jpmml", "--pmml-evaluator", help="PMML artifacts: jpmml or pypmml."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow the pickle to load classes outside "
                                                                    "scikit-learn/numpy/scipy/pandas (this runs "
                                                                    "its code)."),
    feature_names: str = typer.Option(None, "--feature-names", help="scikit-learn sources fitted on a plain array: "
                                                                    "the feature names in column order, a,b,c."),
    worst: int = typer.Option(10, "--worst", help="Worst rows to show, with their inputs."),
    write_golden: int = typer.Option(None, "--write-golden", help="Write the N worst rows within tolerance and N "
                                                                  "seeded random rows as the artifact's golden "
                                                                  "requests."),
    seed: int = typer.Option(0, "--seed", help="Seed of --write-golden's random rows."),
    force: bool = typer.Option(False, "--force", help="Replace an existing golden file."),
    as_json: bool = JSON,
    json_file: Path = typer.Option(None, "--json-file", help="Write the report as JSON to FILE (as --json prints "
                                                             "it), and still show the text report."),
    junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report to FILE."),
    quiet: bool = QUIET,
) -> None:
    """Score a whole data set with the source and the artifact on Spark and compare them row by row."""
    from tfsconvert import output
    from tfsconvert.parity import report as reports
    from tfsconvert.parity.run import ParityOptions, parity as run_parity

    output.set_quiet(quiet)

    def action():
        options = ParityOptions(data, atol, rtol, allow_flips, spark_master, spark_conf or [],
                                pmml_evaluator_choice(pmml_evaluator, "jpmml"), trust_pickle, feature_names, worst,
                                write_golden, force, seed)
        with output.status(f"parity {src} vs {artifact}") as progress:
            return run_parity(src, artifact, options, progress)

    def render(result) -> None:
        for line in result.lines():
            output.stdout.print(line, markup=False)

    gate_exit(run(action, as_json), as_json, json_file, junit, reports.write_junit, render)
