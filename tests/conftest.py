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
    from bigcats.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path / "raw", per_class=16)
