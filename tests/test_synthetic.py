"""The synthetic set is hard enough to teach: colour is a cue, but not a sure one."""

import cv2
import numpy as np

from bigcats.lesson.synthetic import make_synthetic_dataset


def _orange(path):
    """How orange the middle of the image is (where the animal mostly is), however dark: the median of
    (red - green) / (red + green) over its pixels, RGB as trained on."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(float)
    height, width, _ = rgb.shape
    middle = rgb[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3]
    return np.median((middle[..., 0] - middle[..., 1]) / (middle[..., 0] + middle[..., 1] + 1))


def test_colour_tells_the_classes_apart_on_average_and_overlaps(tmp_path):
    folder = make_synthetic_dataset(tmp_path / "synthetic", per_class=40)
    lions, tigers = ([_orange(p) for p in sorted((folder / name).glob("*.jpg"))] for name in ("lion", "tiger"))
    assert np.mean(tigers) > np.mean(lions) + 0.02  # tigers are the more orange: reading BGR changes that
    assert max(lions) > min(tigers)  # but some lions are more orange than some tigers: not a sure cue
    assert len(lions) == len(tigers) == 40 and (folder / "SYNTHETIC.txt").exists()
