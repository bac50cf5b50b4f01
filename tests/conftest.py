"""Shared fixtures: tiny data sets and broken files made by the tests themselves."""

import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
DEV_DATA = ROOT.parent / "shared" / "data" / "lions-tigers-dev"


def like_a_terminal():
    """For a child process that a test interrupts with SIGINT: Ctrl-C's default action, as in a
    terminal (a shell that starts a job in the background makes its children ignore SIGINT)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def jpeg_bytes(array, mode=None, quality=90):
    from PIL import Image

    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(array):
    import cv2

    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def random_rgb(seed, height=48, width=64):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def check_framings_of_red_and_blue(out, sharp_below):
    """Framings (photos, size, size, 3) of a photo red on the left, blue on the right: only those
    two colours, mirrored borders included; crops in different places; some framings sharp, some at
    a low resolution (their sharpest red edge below `sharp_below`)."""
    assert (out[..., 1] < 1).all() and (np.abs(out[..., 0] + out[..., 2] - 255) < 2).all()
    red_share = (out[..., 0] > 127).mean(axis=(1, 2))
    assert red_share.max() - red_share.min() > 0.2  # crops land in different places
    edges = np.abs(np.diff(out[..., 0], axis=2)).max(axis=(1, 2))
    assert (edges < sharp_below).any() and (edges > 200).any()  # some sharp, some low-resolution


@pytest.fixture
def tiny_data(tmp_path):
    """tmp/raw/{lion,tiger}/ with 16 synthetic images each (a real, learnable signal)."""
    from bigcats.lesson.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path / "raw", per_class=16)


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def clone(tmp_path, name):
    """A fresh clone of this checkout's HEAD, as a learner gets it."""
    target = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def jupyter_api(base, token, path, method="GET", body=None):
    """A call to a Jupyter Server's REST API; JSON in and out."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}{path}?token={token}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@contextlib.contextmanager
def jupyterlab_in(checkout, tmp_path):
    """JupyterLab started from the project's environment as the README starts it
    (`.venv/bin/jupyter lab notebooks/`, here on 127.0.0.1 with a token), in `checkout`, whose
    bigcats it imports (as that checkout's own environment would); stopped, with its kernels, after.
    Yields (base URL, token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "BIGCATS_DATA_DIR": str(tmp_path / "data" / "raw"),
        "BIGCATS_MODELS_DIR": str(tmp_path / "models"),
        "BIGCATS_REPORTS_DIR": str(tmp_path / "reports"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no settings of this machine's user
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [str(jupyter), "lab", "notebooks/", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--IdentityProvider.token={token}"]
    command += ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    jupyter_api(base, token, "/api/status")
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:])
            yield base, token
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def require_backend(name):
    """Skip where Keras' backend `name` (torch, jax) is not installed, except where CI asks for it
    (BIGCATS_REQUIRE_BACKENDS=torch): there a missing backend fails instead of passing unseen."""
    import importlib.util

    if importlib.util.find_spec(name) is not None:
        return
    if name in os.environ.get("BIGCATS_REQUIRE_BACKENDS", "").split(","):
        pytest.fail(f"{name} is not installed, and BIGCATS_REQUIRE_BACKENDS asks for it")
    pytest.skip(f"{name} is not installed here (pip install -r requirements-{name}.txt)")


def on_backend(backend, code, *args, timeout=600):
    """Run `code` (Python, given `args` as sys.argv[1:]) with Keras on `backend` in a fresh process
    of this environment, from the project root; the CompletedProcess (text)."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
