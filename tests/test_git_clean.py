"""A learner's runs never show up as changes: with nbstripout installed as the clone's git filter
(as setup_env does), a notebook saved by JupyterLab with outputs, execution counts and the
kernel's Python version is, to git, the committed notebook."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def clone(tmp_path, name):
    target = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def save_as_jupyterlab_would(path):
    notebook = nbformat.read(path, as_version=4)
    for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a learner's output\n")]
    notebook.metadata.language_info["version"] = "3.12.9"  # the kernel's Python fills this in
    nbformat.write(notebook, path)


@pytest.fixture
def nbstripout():
    found = shutil.which("nbstripout", path=str(Path(sys.executable).parent))
    if not found or not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("needs git, a git checkout and nbstripout (requirements.txt)")
    return found


def test_a_notebook_run_and_saved_leaves_the_clone_clean(tmp_path, nbstripout):
    checkout = clone(tmp_path, "learner")
    # the two lines setup_env.sh runs in a git checkout
    subprocess.run([nbstripout, "--install"], cwd=checkout, check=True)
    git("config", "filter.nbstripout.extrakeys", "metadata.language_info.version", cwd=checkout)
    assert 'nbstripout" --install' in (ROOT / "setup_env.sh").read_text()
    for path in sorted((checkout / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        save_as_jupyterlab_would(path)
    assert git("status", "--porcelain", cwd=checkout) == ""


def test_without_the_filter_the_same_save_would_dirty_the_clone(tmp_path, nbstripout):
    checkout = clone(tmp_path, "unfiltered")
    save_as_jupyterlab_would(checkout / "notebooks" / "01_environment_check.ipynb")
    assert "01_environment_check.ipynb" in git("status", "--porcelain", cwd=checkout)
