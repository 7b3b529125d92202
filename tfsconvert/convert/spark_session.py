"""The Spark session of this process, and the pre-flight checks for Spark sources.

One session per process: it is started on first use (`local[*]` unless `--spark-master`) with
pyspark2pmml's bundled JPMML-SparkML jars on its class path, and reused by every later conversion
in the same process (a test run starts Spark once). Its JVM's log goes to an unlinked temp file
instead of the user's terminal (shown with --debug); the JVM exits with this process.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

from tfsconvert.convert.pmml_writer import check_java, installed, release
from tfsconvert.convert.result import Progress
from tfsconvert.errors import EnvironmentProblem
from tfsconvert.quiet import DEBUG_ENV

LOCAL_MASTER = "local[*]"
# pyspark2pmml version -> (oldest, newest) Spark release line its bundled JPMML-SparkML jars support
# (pyspark2pmml/__init__.py `_spark_module`: one jar set per line, 3.4 ... 4.2 in 0.12.0). A release
# missing here is not judged up front; pyspark2pmml's own "Apache Spark version X is not supported"
# is still translated into the same message.
SPARK_SUPPORT = {
    "0.12.0": ("3.4", "4.2"),  # docs/architecture.md "Supported versions": pyspark 4.2.1
}
_PYSPARK2PMML_SKEW = re.compile(r"Apache Spark version (\S+) is not supported")

_state: dict = {"session": None, "master": None, "log": None, "conf": {}}


# ---------------------------------------------------------------------------------------------
# Pre-flight


def version_skew(spark_version: str, pyspark2pmml_version: str, oldest: str | None, newest: str | None
                 ) -> EnvironmentProblem:
    """The one-line error naming both versions and the two ways out."""
    supported = f"Spark {oldest} to {newest}" if oldest else "other Spark releases"
    pin = f"pip install 'pyspark=={newest}.*'" if newest else "install a Spark release pyspark2pmml supports"
    return EnvironmentProblem(
        "spark-version-unsupported",
        f"Spark {spark_version} is not supported by pyspark2pmml {pyspark2pmml_version} (it supports {supported})",
        f"{pin}, or pip install --upgrade pyspark2pmml (a newer release supports newer Spark)")


def check_spark_version(spark_version: str, pyspark2pmml_version: str,
                        table: dict[str, tuple[str, str]] | None = None) -> None:
    """EnvironmentProblem when `table` says pyspark2pmml has no JPMML-SparkML jars for this Spark."""
    table = SPARK_SUPPORT if table is None else table
    span = table.get(pyspark2pmml_version)
    if span is None:
        return
    line = release(spark_version)[:2]
    if not release(span[0])[:2] <= line <= release(span[1])[:2]:
        raise version_skew(spark_version, pyspark2pmml_version, *span)


def translate_skew(message: str, pyspark2pmml_version: str) -> EnvironmentProblem | None:
    """pyspark2pmml's own refusal of the Spark version as our message (None for any other message)."""
    match = _PYSPARK2PMML_SKEW.search(message)
    if match is None:
        return None
    span = SPARK_SUPPORT.get(pyspark2pmml_version, (None, None))
    return version_skew(match.group(1), pyspark2pmml_version, *span)


def preflight(target: str, table: dict[str, tuple[str, str]] | None = None) -> str:
    """Before Spark starts: the Python packages, Java 17+ and, for PMML, a Spark version pyspark2pmml
    supports. Returns the pyspark version."""
    spark_version = installed("pyspark", "pyspark", "spark")
    if target == "pmml":
        pyspark2pmml_version = installed("pyspark2pmml", "pyspark2pmml", "spark")
        check_java(users="Spark and the PMML evaluators")
        check_spark_version(spark_version, pyspark2pmml_version, table)
    else:
        installed("onnxmltools", "onnxmltools", "onnx")
        installed("onnxruntime", "onnxruntime", "onnx")
        check_java(users="Spark and onnxmltools' Spark converters")
    return spark_version


# ---------------------------------------------------------------------------------------------
# The session


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """pyspark's Python-side warnings (pandas version notices) stay off the user's terminal."""
    with warnings.catch_warnings():
        if not os.environ.get(DEBUG_ENV):
            warnings.simplefilter("ignore")
        yield


def _conf(master: str, extra: dict[str, str] | None = None):
    from pyspark import SparkConf

    conf = (SparkConf().setMaster(master).setAppName("tfsconvert")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false")
            .set("spark.sql.shuffle.partitions", "4"))
    with contextlib.suppress(ImportError, ValueError):
        import pyspark2pmml

        conf.set("spark.jars", pyspark2pmml.spark_jars())  # ValueError: no jars for this Spark
    if master.startswith("local"):
        # Loopback only; also lets the driver serve the jars when the host name resolves elsewhere.
        conf.set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
    for key, value in (extra or {}).items():  # --spark-conf k=v (tfsconvert parity)
        conf.set(key, value)
    return conf


def jvm_log_tail(lines: int = 1) -> str:
    """The last lines the Spark JVM wrote (empty with --debug, where it writes to stderr)."""
    log = _state["log"]
    if log is None:
        return ""
    log.flush()
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    log.seek(0, os.SEEK_END)
    found = [line for line in text.splitlines() if line.strip() and not line.startswith("\t")]
    return "\n".join(found[-lines:])


def _start(master: str, extra: dict[str, str] | None = None):
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    conf = _conf(master, extra)
    popen = {}
    if not os.environ.get(DEBUG_ENV):
        _state["log"] = _state["log"] or tempfile.TemporaryFile(prefix="tfsconvert-spark-")
        popen = {"stdout": _state["log"], "stderr": _state["log"]}
    gateway = SparkContext._gateway  # a restart (another master) keeps the JVM pyspark already has
    launched = gateway is None
    try:
        if launched:
            gateway = launch_gateway(conf, popen_kwargs=popen)
        context = SparkContext(conf=conf, gateway=gateway)
    except Exception as error:  # noqa: BLE001 - py4j/pyspark raise many types when the JVM cannot start
        if launched and gateway is not None:  # no JVM outlives a failed start
            with contextlib.suppress(Exception):
                gateway.proc.kill()
            SparkContext._gateway = SparkContext._jvm = None
        last = jvm_log_tail() or (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EnvironmentProblem("spark-start-failed", f"Spark could not start (master {master}): {last[:300]}",
                                 "re-run with --debug to see Spark's log" + (
                                     "" if master.startswith("local") else "; check --spark-master")) from None
    context.setLogLevel("ERROR")
    return SparkSession(context)


def session(master: str | None = None, progress: Progress = lambda _: None, conf: dict[str, str] | None = None):
    """This process's SparkSession on `master` (default local[*]), started on first use (about 20 s).
    `conf`: extra Spark settings; a running session started with other ones is restarted (None: any)."""
    master = master or LOCAL_MASTER
    with quiet():
        from pyspark import SparkContext

        active = SparkContext._active_spark_context
        same_conf = conf is None or conf == _state["conf"]
        if _state["session"] is not None and active is not None and _state["master"] == master and same_conf:
            return _state["session"]
        if active is not None:
            if active.master == master and not conf:  # started by someone else in this process: use it
                from pyspark.sql import SparkSession

                _state["session"], _state["master"] = SparkSession.builder.getOrCreate(), master
                return _state["session"]
            active.stop()
        progress(f"starting Spark ({master}; about 20 s the first time)")
        _state["session"], _state["master"], _state["conf"] = _start(master, conf), master, dict(conf or {})
    return _state["session"]


def debug_log(text: str) -> None:
    if os.environ.get(DEBUG_ENV):
        sys.stderr.write(text + "\n")
