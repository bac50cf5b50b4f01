"""Shared fixtures: tiny data sets and broken files made by the tests themselves."""

import io
import os
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


@pytest.fixture
def tiny_data(tmp_path):
    """tmp/raw/{lion,tiger}/ with 16 synthetic images each (a real, learnable signal)."""
    from bigcats.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path / "raw", per_class=16)
