"""Lesson: the tutorial's settings, one set of defaults, each overridable by an environment variable.

Notebooks read their knobs through `env_param` so that tests and headless runs can shrink them
(`BIGCATS_EPOCHS=1`) without editing a notebook.
"""

import os

# The settings the tutorial recommends; the command line uses the same numbers.
IMAGE_SIZE = 144
BATCH_SIZE = 16
LEARNING_RATE = 2e-3  # Adam's starting rate; a cosine takes it down to 5% of this
EPOCHS = 30
SEED = 42
MODEL_NAME = "lion_tiger_cnn.keras"
CHECKPOINT_SECONDS = 60  # training keeps the state to resume from at most this old (beside the model)
DATA_DIR = "data/raw"  # relative to the project root, where the command line runs

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_param(name, default):
    """Return environment variable `name` converted to the type of `default`, else `default`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        if kind is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(raw)
            return raw.lower() in _TRUE
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{name}={raw!r} is not a valid {kind.__name__}. Unset it or give a value like {default!r}."
        ) from None
