"""The command lines that serve a generated config: Docker, tensorflow_model_server, tfsconvert serve."""

from __future__ import annotations

import shlex
from pathlib import Path

DOCKER_MODELS = "/models"  # the image's MODEL_BASE_PATH (docs/tf-serving.md §6.5)
DOCKER_CONFIG_DIR = "/config"
GRPC_PORT, REST_PORT = 8500, 8501  # the image's ports (docs/tf-serving.md §4.10, §6.5)
SESSION_FLAG = "--tensorflow_session_parallelism"  # TF Serving's: both of TensorFlow's thread pools


def docker_base_path(name: str) -> str:
    """Where the container sees model `name`: /models/<name>, as the image expects."""
    return f"{DOCKER_MODELS}/{name}"


def command_lines(out: Path, files: dict[str, str], mounts: dict[str, str], gpus: int,
                  session_parallelism: int = 0) -> dict[str, str]:
    """Shell-quoted commands; `files`: role -> file name in `out`; `mounts`: host base path -> container path;
    a `session_parallelism` (0: TensorFlow's choice) is passed to each server."""
    session = [f"{SESSION_FLAG}={session_parallelism}"] if session_parallelism else []
    docker = ["docker", "run", "--rm", "-p", f"{GRPC_PORT}:{GRPC_PORT}", "-p", f"{REST_PORT}:{REST_PORT}"]
    docker += ["--gpus", str(gpus)] if gpus else []
    for host, container in mounts.items():
        docker += ["-v", f"{host}:{container}:ro"]
    docker += ["-v", f"{out}:{DOCKER_CONFIG_DIR}:ro", "tensorflow/serving:latest-gpu" if gpus else "tensorflow/serving",
               f"--model_config_file={DOCKER_CONFIG_DIR}/{files['docker_model_config']}", "--enable_batching",
               f"--batching_parameters_file={DOCKER_CONFIG_DIR}/{files['batching_parameters']}",
               "--enable_model_warmup", *session]
    batching = ["--enable_batching", f"--batching_parameters_file={out / files['batching_parameters']}"]
    server = ["tensorflow_model_server", f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
              f"--model_config_file={out / files['model_config']}", *batching, "--enable_model_warmup", *session]
    serve = ["tfsconvert", "serve", "--model-config-file", str(out / files["model_config"]), "--enable-batching",
             "--batching-parameters-file", str(out / files["batching_parameters"]), *session]
    return {"docker": shlex.join(docker), "tensorflow_model_server": shlex.join(server),
            "tfsconvert_serve": shlex.join(serve)}
