"""A free GPU for everyone else: every notebook's first cell, which acts only in Colab or Kaggle,
run here with a stand-in `google.colab` and a local clone of this project."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from bigcats.environment.hosted import COLAB_CELL_TAG, colab_cell, lacking, repository, write_cells
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What a Colab runtime has (its own TensorFlow, CUDA and NumPy, OpenCV with its GUI), as pip lists it
COLAB = {"tensorflow": "2.19.0", "numpy": "2.0.2", "keras": "3.10.0", "opencv-python": "4.12.0.88",
         "matplotlib": "3.10.0", "pillow": "11.3.0", "tqdm": "4.67.1", "nbclient": "0.10.2", "nbformat": "5.10.4",
         "wrapt": "1.17.3"}  # fmt: skip
DEPENDENCIES = ["tensorflow>=2.16,<2.22", "keras>=3.3", "numpy>=1.26", "opencv-python-headless>=4.9", "wrapt>=1.11"]
PINS = {"tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6", "opencv-python-headless": "5.0.0.93"}


def test_a_colab_runtime_gets_only_what_it_lacks_and_keeps_its_own_tensorflow():
    assert lacking(DEPENDENCIES, COLAB, PINS) == ([], [])
    older = {**COLAB, "tensorflow": "2.15.0", "keras": "2.15.0"}
    del older["opencv-python"]
    install, kept = lacking(DEPENDENCIES, older, PINS)
    assert install == ["keras==3.15.1", "opencv-python-headless==5.0.0.93"]
    assert kept == ["tensorflow 2.15.0 (this project is tested with 2.21.0)"]


def test_every_notebook_starts_with_the_hosted_cell_naming_pyprojects_repository():
    assert "[project.urls]" in (ROOT / "pyproject.toml").read_text()
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert COLAB_CELL_TAG in code[0].metadata.get("tags", []), path.name
        assert code[0].source == colab_cell(repository()), f"{path.name}: run python -m bigcats.environment.hosted"
    assert write_cells() == []  # nothing to bring up to date


def stand_in_colab(tmp_path):
    """A `google.colab` that imports, as in a Colab runtime; the working folder Colab starts in."""
    package = tmp_path / "stand-in" / "google" / "colab"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    content = tmp_path / "content"
    content.mkdir()
    return package.parent.parent, content


def run_cells(cells, cwd, **env):
    code = "\n".join(cells) + "\nimport json, os, sys\nprint(json.dumps({'cwd': os.getcwd(), 'path': sys.path[:2]}))"
    environment = {**os.environ, **env}
    environment.pop("BIGCATS_PROJECT", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True)


@pytest.mark.slow
def test_in_colab_the_cell_clones_the_project_prepares_it_and_the_notebook_runs_as_here(tmp_path):
    stand_in, content = stand_in_colab(tmp_path)
    cell = colab_cell(repository())
    checked = "from bigcats.environment.startup_log import hide_harmless_lines\nimport bigcats\nprint(bigcats.__file__)"
    env = dict(PYTHONPATH=str(stand_in), BIGCATS_REPOSITORY=str(ROOT), BIGCATS_PHOTOS_URL="http://127.0.0.1:9/none.zip")
    done = run_cells([cell, cell, checked], content, **env)  # run twice, as a learner re-runs a cell
    assert done.returncode == 0, done.stderr[-3000:]
    project = content / "bigcats"
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["cwd"] == str(project / "notebooks") and facts["path"][0] == str(project)
    assert str(project / "bigcats" / "__init__.py") in done.stdout  # the clone's package, not this checkout's
    assert done.stdout.count("Colab: installed nothing (it has them all)") == 2 and "synthetic set" in done.stdout
    assert (project / "notebooks" / "04_train_cnn.ipynb").exists()


def test_the_cell_says_what_to_do_where_the_project_has_no_public_address_yet(tmp_path):
    stand_in, content = stand_in_colab(tmp_path)
    done = run_cells([colab_cell("https://github.invalid/bigcats/bigcats.git")], content, PYTHONPATH=str(stand_in))
    assert done.returncode == 1 and "set BIGCATS_REPOSITORY" in done.stderr
    assert not (content / "bigcats").exists()


def test_outside_colab_and_kaggle_the_cell_does_nothing(tmp_path):
    env = {"KAGGLE_KERNEL_RUN_TYPE": ""}
    done = run_cells([colab_cell(repository())], tmp_path, **env)
    assert done.returncode == 0 and json.loads(done.stdout.strip().splitlines()[-1])["cwd"] == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_childs_output_is_shown_line_by_line_and_its_failure_raised(capsys):
    from bigcats.environment.hosted import run_and_show

    run_and_show([sys.executable, "-c", "import sys; print('Collecting keras'); print('to stderr', file=sys.stderr)"])
    assert capsys.readouterr().out == "Collecting keras\nto stderr\n"
    with pytest.raises(subprocess.CalledProcessError):
        run_and_show([sys.executable, "-c", "raise SystemExit(3)"])
