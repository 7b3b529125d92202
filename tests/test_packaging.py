"""tfsconvert as users install it: `python -m build` (the wheel built from the sdist), installed into fresh
venvs with one extra at a time, each command either working or exiting 3 with the exact
`pip install 'tfsconvert[...]'` line; and the CI integrations (pre-commit hook, GitHub action, GitLab
template) running their own command lines.

Slow (each venv installs its packages; with uv and a warm cache a few seconds each, with pip about a minute).
The venvs get the versions of the running environment (uv.lock's) as constraints, from the installer's cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import tfsconvert
from conftest import converted

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _uv() -> str | None:
    """The uv `make` set up (TFSCONVERT_UV), or one on PATH: installs in seconds; else pip."""
    local = os.environ.get("TFSCONVERT_UV")
    return local if local and Path(local).exists() else shutil.which("uv")


def _env(venv: Path | None = None) -> dict:
    """The environment of a command run as a user would: no PYTHONPATH into this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def _run(args: list, cwd: Path, venv: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(venv), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """`python -m build`: the sdist, and the wheel built from it (so the sdist must hold every C header)."""
    out = tmp_path_factory.mktemp("dist")
    uv = _uv()  # `uv build` is `python -m build` (sdist, then the wheel from it) with uv's cached build env
    builder = [uv, "build", "--quiet", "--python", sys.executable] if uv else [sys.executable, "-m", "build"]
    built = _run([*builder, "--out-dir" if uv else "--outdir", out, REPO], cwd=out)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def constraints(tmp_path_factory) -> Path:
    """The running environment's versions (uv.lock's), so the venvs install what the suite tests."""
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                   if d.metadata["Name"] and d.metadata["Name"].lower() != "tfsconvert"})
    path.write_text("\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="module")
def venv(dist, constraints):
    """`venv(extras)`: a fresh venv with the built wheel and those extras (one venv per set, reused). Not under
    pytest's 0700 temp dirs: validate's sandboxed server runs as another user and must read the venv."""
    made: dict[str, Path] = {}
    top = Path(tempfile.mkdtemp(prefix="tfsconvert-venvs-"))
    top.chmod(0o755)

    def make(extras: str = "") -> Path:
        if extras not in made:
            root = top / (extras or "core")
            root.mkdir()
            spec = f"tfsconvert[{extras}] @ {dist['wheel'].as_uri()}" if extras else str(dist["wheel"])
            uv = _uv()
            if uv:
                steps = [[uv, "venv", "--seed", "--quiet", "--python", sys.executable, root],
                         [uv, "pip", "install", "--quiet", "--python", root / "bin" / "python", "-c", constraints,
                          spec]]
            else:
                steps = [[sys.executable, "-m", "venv", root],
                         [root / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", constraints, spec]]
            for step in steps:
                done = _run(step, cwd=root)
                assert done.returncode == 0, done.stderr[-3000:]
            made[extras] = root
        return made[extras]

    yield make
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def onnx_base(fixture_path, tmp_path_factory) -> Path:
    """An ONNX version with golden requests, converted here (the full stack) from a scikit-learn pipeline."""
    return converted(fixture_path, tmp_path_factory, "onnx", "sklearn_pipeline", "--version", "1")[1]


def _tfsconvert(venv: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return _run([venv / "bin" / "tfsconvert", *args], cwd=cwd, venv=venv)


def _missing_extra(result: subprocess.CompletedProcess, extra: str) -> None:
    """Exit 3 and the exact pip line of the extra, no traceback."""
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"pip install 'tfsconvert[{extra}]'" in result.stderr and "Traceback" not in result.stderr, result.stderr


def _has(venv: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return _run([venv / "bin" / "python", "-c", code], cwd=venv).returncode == 0


def test_the_sdist_has_the_c_sources_and_the_wheel_the_compiled_modules(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in sdist.getnames()}
    assert {"LICENSE", "CHANGELOG.md", "tfsconvert/server/_buffer.h", "tfsconvert/server/_dense_json.h",
            "tfsconvert/server/_http.c", "tfsconvert/serving/_loadgen.c"} <= names
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
        meta = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {n.split("/")[-1].split(".")[0] for n in names if n.endswith(".so")} == {"_http", "_rest_json", "_loadgen"}
    assert not [n for n in names if n.endswith((".c", ".h"))]
    assert f"Version: {tfsconvert.__version__}" in meta and "License-Expression: Apache-2.0" in meta
    assert "Classifier: Programming Language :: Python :: 3.13" in meta
    assert set(re.findall(r"Provides-Extra: (\S+)", meta)) == {"tensorflow", "onnx", "pmml", "sklearn", "spark",
                                                               "xgboost", "lightgbm", "all"}


def test_the_light_core_inspects_and_checks_statically_and_names_the_extra_for_the_rest(
        venv, fixture_path, onnx_base, tmp_path):
    core = venv()
    assert not _has(core, "tensorflow") and not _has(core, "onnxruntime")
    version = _tfsconvert(core, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"tfsconvert {tfsconvert.__version__}"
    base = fixture_path("savedmodel_base")
    inspected = _tfsconvert(core, "inspect", base, "--json", cwd=tmp_path)
    assert inspected.returncode == 0, inspected.stderr
    assert sorted(v["version"] for v in json.loads(inspected.stdout)["versions"]) == [1, 2]
    static = _tfsconvert(core, "validate", base, "--static-only", "--json", cwd=tmp_path)
    assert static.returncode == 0, static.stdout + static.stderr
    assert {v["not_served_because"] for v in json.loads(static.stdout)["versions"]} == {"--static-only"}
    _missing_extra(_tfsconvert(core, "validate", onnx_base, cwd=tmp_path), "onnx")
    _missing_extra(_tfsconvert(core, "validate", base, "--protocol", "rest", cwd=tmp_path), "tensorflow")
    _missing_extra(_tfsconvert(core, "saved-model", fixture_path("frozen_mlp_pb"), "--base-path",
                               tmp_path / "models" / "mlp", cwd=tmp_path), "tensorflow")
    # The Python API raises what the CLI exits 3 with.
    code = ("import sys, tfsconvert\nfrom tfsconvert.errors import EnvironmentProblem\n"
            "try:\n    tfsconvert.saved_model(sys.argv[1], sys.argv[2])\n"
            "except EnvironmentProblem as error:\n    print(error.code, error.hint)\n")
    api = _run([core / "bin" / "python", "-c", code, fixture_path("frozen_mlp_pb"), tmp_path / "api"], cwd=tmp_path,
               venv=core)
    assert api.stdout.startswith("missing-dependency pip install 'tfsconvert[tensorflow]'"), api.stdout + api.stderr


def test_onnx_serves_over_rest_and_grpc_without_tensorflow(venv, onnx_base, fixture_path, tmp_path):
    """The whole validate of an ONNX version (sandboxed server, golden requests over both protocols) with the
    onnx extra alone: TF Serving's gRPC API comes from tfsconvert.tfproto, not tensorflow-serving-api."""
    onnx = venv("onnx")
    assert not _has(onnx, "tensorflow") and not _has(onnx, "tensorflow_serving")
    result = _tfsconvert(onnx, "validate", onnx_base, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (version,) = json.loads(result.stdout)["versions"]
    assert version["served"] and version["golden_failed"] == 0 and version["golden_passed"] > 0
    assert sorted({r["protocol"] for r in version["golden"]}) == ["grpc", "rest"]
    _missing_extra(_tfsconvert(onnx, "onnx", fixture_path("sklearn_pipeline"), cwd=tmp_path), "sklearn")


def test_pmml_serves_without_tensorflow(venv, fixture_path, tmp_path_factory, tmp_path):
    pmml = venv("pmml")
    assert not _has(pmml, "tensorflow") and not _has(pmml, "sklearn")
    base = converted(fixture_path, tmp_path_factory, "pmml", "sklearn_pipeline", "--version", "1",
                     "--target-name", "species", "--pmml-evaluator", "jpmml")[1]
    result = _tfsconvert(pmml, "validate", base, "--pmml-evaluator", "both", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (version,) = json.loads(result.stdout)["versions"]
    assert version["golden_failed"] == 0 and {r["engine"] for r in version["golden"]} == {"jpmml", "pypmml"}
    _missing_extra(_tfsconvert(pmml, "pmml", fixture_path("sklearn_pipeline"), cwd=tmp_path), "sklearn")


def test_github_action_installs_with_its_extras_and_validates(venv, onnx_base, tmp_path):
    """Each `run:` of action.yml, its inputs substituted as GitHub does (pip installs this checkout)."""
    import yaml

    action = yaml.safe_load((REPO / "action.yml").read_text())
    inputs = {"path": str(onnx_base), "extras": "onnx", "junit": str(tmp_path / "report.xml"), "args": "--strict"}
    assert set(inputs) == set(action["inputs"])
    target = venv("onnx")
    for step in action["runs"]["steps"]:
        env = {k: re.sub(r"\$\{\{ inputs\.(\w+) \}\}", lambda m: inputs[m.group(1)], v)
               for k, v in step.get("env", {}).items()}
        done = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                              env={**_env(target), **env, "GITHUB_ACTION_PATH": str(REPO)}, timeout=600)
        assert done.returncode == 0, f"{step['name']}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert 'failures="0"' in (tmp_path / "report.xml").read_text()


def test_gitlab_template_runs(venv, dist, onnx_base, tmp_path):
    """The GitLab CI job of docs/ci.md, its pip line pointed at the built wheel."""
    import yaml

    block = re.search(r"## GitLab CI\n.*?```yaml\n(.*?)```", (REPO / "docs" / "ci.md").read_text(), re.S)[1]
    (job,) = yaml.safe_load(block).values()
    target = venv("onnx")
    env = {**_env(target), **{k: str(v) for k, v in job["variables"].items()}, "MODELS": str(onnx_base)}
    for line in job["before_script"] + job["script"]:
        line = re.sub(r'"tfsconvert(\[.*?\])"', rf'"tfsconvert\1 @ {dist["wheel"].as_uri()}"', line)
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{line}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert 'failures="0"' in (tmp_path / "validate.xml").read_text()


def test_pre_commit_hook(tmp_path, fixture_path):
    """`pre-commit try-repo` of this checkout on a repository holding a model base path: passes, then fails
    once the version directories are misnamed (TF Serving would find no version)."""
    project = tmp_path / "project"
    shutil.copytree(fixture_path("savedmodel_base"), project / "models" / "mlp")
    env = {**_env(), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "models"]):
        subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "tfsconvert-validate-static",
               "--all-files"]
    passed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    assert "Passed" in passed.stdout
    for number in ("1", "2"):
        (project / "models" / "mlp" / number).rename(project / "models" / "mlp" / f"v{number}")
    subprocess.run(["git", "add", "-A"], cwd=project, env=env, check=True)
    failed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert failed.returncode == 1 and "Failed" in failed.stdout, failed.stdout[-3000:]
    assert "no-version-directory" in failed.stdout, failed.stdout[-3000:]
