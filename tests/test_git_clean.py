"""A learner's runs never show up as changes: JupyterLab (from the project's environment) saves
the tutorial's notebooks in their committed form, and nbstripout, the clone's git filter, keeps
outputs out of any commit."""

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


def test_outputs_never_reach_a_commit(tmp_path, nbstripout):
    """The git filter: whatever a learner saves, `git add` stages the notebook as committed."""
    checkout = clone(tmp_path, "learner")
    # the two lines setup_env.sh runs in a git checkout
    subprocess.run([nbstripout, "--install"], cwd=checkout, check=True)
    git("config", "filter.nbstripout.extrakeys", "metadata.language_info.version", cwd=checkout)
    assert 'nbstripout" --install' in (ROOT / "setup_env.sh").read_text()
    for path in sorted((checkout / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        save_as_jupyterlab_would(path)
    git("add", "-A", "notebooks", cwd=checkout)
    assert git("diff", "--cached", "--stat", cwd=checkout) == ""


def test_without_the_filter_the_same_save_would_dirty_the_clone(tmp_path, nbstripout):
    checkout = clone(tmp_path, "unfiltered")
    save_as_jupyterlab_would(checkout / "notebooks" / "01_environment_check.ipynb")
    assert "01_environment_check.ipynb" in git("status", "--porcelain", cwd=checkout)


def test_jupyterlab_saves_a_run_tutorial_notebook_as_committed_so_git_pull_works(tmp_path, nbstripout):
    """Through the contents manager JupyterLab saves with, configured as setup_env configures it."""
    import asyncio
    import json

    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    from bigcats import jupyter_hooks
    from bigcats.setup_plan import write_lab_settings

    checkout = clone(tmp_path, "learner")
    write_lab_settings(tmp_path / "env")
    config = json.loads((tmp_path / "env" / "etc" / "jupyter" / "jupyter_server_config.d" / "bigcats.json").read_text())
    hook = config["ContentsManager"]["pre_save_hook"]
    assert hook == "bigcats.jupyter_hooks.strip_tutorial_outputs"
    jupyter_hooks.PROJECT_ROOT = checkout  # the hook's own checkout is the clone's
    manager = AsyncLargeFileManager(root_dir=str(checkout), pre_save_hook=hook)
    for path in ["notebooks/04_train_cnn.ipynb", "notebooks/mine.ipynb"]:
        model = asyncio.run(manager.get("notebooks/04_train_cnn.ipynb", content=True))
        notebook = model["content"]
        for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
            cell.execution_count = count + 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a learner's output\n")]
        notebook.metadata.language_info["version"] = "3.12.9"
        asyncio.run(manager.save({"type": "notebook", "format": "json", "content": notebook}, path))
    assert git("status", "--porcelain", cwd=checkout) == "?? notebooks/mine.ipynb\n"  # the tutorial's: as committed
    assert "a learner's output" in (checkout / "notebooks" / "mine.ipynb").read_text()  # a learner's own: kept
