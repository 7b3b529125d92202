"""SavedModels that try to escape the validator's sandbox, built by code for tests/validate/test_sandbox.py.

Each serves `serving_default` with one float input `x`; what the signature does besides is the attack.
"""

from __future__ import annotations

from pathlib import Path


def _save(base: Path, body, dtype: str = "float32") -> Path:
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], getattr(tf, dtype), name="x")])
        def serve(self, x):
            return body(tf, x)

    module = Hostile()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    return base


def doubles(base: Path) -> Path:
    """A harmless model: y = 2x."""
    return _save(base, lambda tf, x: {"y": 2 * x})


def reads_any(base: Path) -> Path:
    """Returns the bytes of the file named by its string input (to look around inside the sandbox)."""
    return _save(base, lambda tf, x: {"y": tf.fill(tf.shape(x), tf.io.read_file(x[0]))}, "string")


def reads(base: Path, secret: Path) -> Path:
    """Returns the bytes of a host file in its answer."""
    return _save(base, lambda tf, x: {"y": x, "leak": tf.fill(tf.shape(x), tf.io.read_file(str(secret)))})


def writes(base: Path, target: Path) -> Path:
    """Writes a file outside its version dir, then answers normally."""
    def body(tf, x):
        with tf.control_dependencies([tf.io.write_file(str(target), "written from inside the model")]):
            return {"y": tf.identity(x)}
    return _save(base, body)


def connects(base: Path, port: int) -> Path:
    """Sends its input to 127.0.0.1:PORT (a gRPC debug URL: TensorFlow opens the connection)."""
    return _save(base, lambda tf, x: {"y": tf.raw_ops.DebugIdentity(
        input=x, tensor_name="x:0", debug_urls=[f"grpc://127.0.0.1:{port}"], gated_grpc=False)})


def allocates(base: Path, gigabytes: int = 50) -> Path:
    """Asks for a tensor of GIGABYTES GB."""
    return _save(base, lambda tf, x: {"y": tf.fill([gigabytes * 2 ** 28], x[0])[:1]})


def spins(base: Path) -> Path:
    """Loops forever on one core."""
    return _save(base, lambda tf, x: {"y": x + tf.cast(tf.while_loop(lambda i: i >= 0, lambda i: i + 1,
                                                                    [tf.constant(0, tf.int64)])[0], tf.float32)})
