"""The Pythons and platforms the README promises are the ones requirements.txt installs on:
resolved from the package index for each (without installing), with uv, which evaluates
environment markers for the target rather than for the Python running it."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bigcats.environment.machine import SUPPORTED_PYTHON
from conftest import ROOT

PLATFORMS = ["x86_64-unknown-linux-gnu", "x86_64-pc-windows-msvc", "aarch64-apple-darwin"]
PYTHONS = [f"3.{minor}" for minor in range(SUPPORTED_PYTHON[0][1], SUPPORTED_PYTHON[1][1] + 1)]


def uv():
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed (pip install uv): the support matrix was not resolved")
    return found


def index_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def online():
    if not index_reachable():
        pytest.skip("the package index is not reachable: the support matrix needs the network")


@pytest.mark.network
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("python", PYTHONS)
def test_requirements_resolve(online, python, platform):
    command = [uv(), "pip", "compile", str(ROOT / "requirements.txt"), "--python-version", python]
    done = subprocess.run(
        [*command, "--python-platform", platform, "--no-header"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tensorflow==2.21.0" in done.stdout


@pytest.mark.network
def test_python_3_10_is_rightly_left_out(online):
    command = [uv(), "pip", "compile", str(ROOT / "requirements.txt"), "--python-version", "3.10"]
    done = subprocess.run(
        [*command, "--python-platform", PLATFORMS[0], "--no-header"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and "3.11" in done.stderr
