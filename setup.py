"""The C part of the build (everything else is in pyproject.toml): the embedded server's HTTP
transport and its JSON fast path. gcc and the Python headers are on every machine this project
runs on."""

from setuptools import Extension, setup


def _extension(name: str) -> Extension:
    return Extension(f"tfsconvert.validate.server.{name}", [f"tfsconvert/validate/server/{name}.c"],
                     extra_compile_args=["-O2", "-Wall"])


setup(ext_modules=[_extension("_http"), _extension("_rest_json")])
