"""The headless runner starts each notebook's kernel as JupyterLab does, without a warning a
learner would read as an error."""

import os

import nbformat
import pytest

from bigcats.environment.machine import KERNEL_TRANSPORT
from bigcats.environment.tutorial import run_notebook


def test_a_notebook_runs_in_its_folder_over_local_sockets_without_warnings(tmp_path, capfd, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import os\nprint(os.getcwd())")]
    nbformat.write(notebook, folder / "01_x.ipynb")
    monkeypatch.chdir(tmp_path)  # the runner's folder is not the kernel's
    done = run_notebook(folder / "01_x.ipynb", tmp_path / "out" / "01_x.ipynb", timeout=120)
    assert done.cells[0].outputs[0]["text"].strip() == str(folder)
    stderr = capfd.readouterr().err
    assert "without encryption" not in stderr and "WARNING" not in stderr, stderr
    assert sorted(os.listdir(tmp_path)) == ["notebooks", "out"] and os.listdir(folder) == ["01_x.ipynb"]


@pytest.mark.skipif(os.name == "nt", reason="Windows has no local sockets for Jupyter: TCP there")
def test_jupyter_and_the_runner_use_local_sockets():
    from bigcats.environment.setup_plan import SERVER_SETTINGS

    assert KERNEL_TRANSPORT == "ipc" and SERVER_SETTINGS["KernelManager"] == {"transport": "ipc"}
