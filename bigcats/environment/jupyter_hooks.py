"""Environment tool: JupyterLab saving the tutorial's notebooks as they are committed, so a learner's runs never
show up in git and the next `git pull` never conflicts.

nbstripout, installed by setup_env as the clone's git filter, keeps outputs out of commits, but
git still calls a notebook saved with outputs "modified" (it compares file sizes before it runs a
filter), and `git pull` then refuses to merge. So JupyterLab, started from the project's
environment, saves the tutorial's own notebooks (notebooks/NN_*.ipynb of this checkout) through
nbstripout's own stripping: the outputs stay on screen; the file keeps the committed form. A
notebook saved under another name (File > Save Notebook As...) keeps its outputs.
"""

import re
from pathlib import Path

TUTORIAL_NOTEBOOK = re.compile(r"^notebooks/\d\d_[^/]+\.ipynb$")
# What the git filter strips besides outputs and counts: nbstripout's own list (its command line
# adds it; `strip_output` does not), and the kernel's Python, which differs from learner to learner.
# JupyterLab writes the cell keys when a learner collapses or scrolls an output, or records timing.
EXTRA_KEYS = [
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
    "metadata.language_info.version",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def is_tutorial_notebook(path, root_dir):
    """Is `path` (relative to the server's root_dir) one of this checkout's tutorial notebooks?"""
    try:
        relative = (Path(root_dir) / path).resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return False
    return bool(TUTORIAL_NOTEBOOK.match(relative.as_posix()))


def strip_tutorial_outputs(model, path, contents_manager, **kwargs):
    """Jupyter Server's pre_save_hook: a tutorial notebook is saved without outputs, execution
    counts, timings, collapsed outputs or the kernel's Python version, exactly as nbstripout (the
    git filter) writes it."""
    from nbstripout import strip_output

    if model.get("type") != "notebook" or not is_tutorial_notebook(path, contents_manager.root_dir):
        return
    import nbformat

    notebook = nbformat.from_dict(model["content"])
    model["content"] = strip_output(notebook, keep_output=False, keep_count=False, keep_id=False, extra_keys=EXTRA_KEYS)
