"""The C part of the build (everything else is in pyproject.toml): the embedded server's HTTP
transport and its JSON fast paths, and the load generator's REST clients. They are optional: where
they do not build (no compiler, no epoll: macOS, Windows) the install goes on and the pure-Python
twins run instead (tfsconvert/accel.py)."""

from setuptools import Extension, setup


def _extension(package: str, name: str, *parts: str) -> Extension:
    folder = package.replace(".", "/")
    sources = [f"{folder}/{source}.c" for source in (name, *parts)]
    return Extension(f"{package}.{name}", sources, extra_compile_args=["-O2", "-Wall"], optional=True)


_SERVER = "tfsconvert.server"
setup(ext_modules=[_extension(_SERVER, "_http", "_dense_json"), _extension(_SERVER, "_rest_json", "_predict_json", "_dense_json"),
                   _extension("tfsconvert.serving", "_loadgen")])
