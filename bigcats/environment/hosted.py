"""Environment tool: the tutorial in a hosted notebook with a free GPU (Colab, Kaggle).

Each notebook's first cell acts only there: it clones this project from its repository (the
address in pyproject.toml's [project.urls], copied into the cell by `write_cells` and kept equal
by a test) and runs `python -m bigcats hosted-setup` in the notebook's own Python (so that its progress
shows), which installs what the hosted notebook lacks, never its own TensorFlow, CUDA or NumPy,
and fetches the photos
(docs/install.md#a-free-gpu-in-a-hosted-notebook).
"""

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# The hosted notebook's own builds, matched to its GPU and its CUDA: kept as they are, whatever
# the pins say (a pip-installed TensorFlow would not match Colab's CUDA libraries)
KEPT = ("tensorflow", "numpy", "torch", "jax")
# Distributions that provide the same import as a pinned one (Colab ships OpenCV with its GUI)
SAME_IMPORT = {"opencv-python-headless": ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless")}
COLAB_CELL_TAG = "hosted"
NOT_PUBLISHED = ".invalid"  # RFC 2606: a name that is no address, until the project is published
HOSTED_DOCS = "docs/install.md#a-free-gpu-in-a-hosted-notebook"


def hosted_notebook():
    """'Colab', 'Kaggle' or '' (elsewhere): the hosted notebook this Python runs in."""
    if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
        return "Colab"
    return "Kaggle" if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") else ""


def repository(pyproject=PROJECT / "pyproject.toml"):
    """The project's repository address, from pyproject.toml's [project.urls]."""
    return tomllib.loads(Path(pyproject).read_text())["project"]["urls"]["Repository"]


def lacking(dependencies, installed, pins):
    """(pip requirements to install, what is kept though outside the range) for the package's
    `dependencies` (PEP 508 strings), given `installed` {name: version} and the tested `pins`
    {name: version}: a missing or out-of-range package gets its pin; the hosted notebook's own
    TensorFlow, NumPy, torch and JAX are never replaced."""
    from packaging.requirements import Requirement

    install, kept = [], []
    for text in dependencies:
        requirement = Requirement(text)
        name = requirement.name.lower()
        have = installed.get(name) or next((installed[n] for n in SAME_IMPORT.get(name, ()) if n in installed), None)
        if have is not None and requirement.specifier.contains(have, prereleases=True):
            continue
        if name in KEPT:
            kept.append(f"{name} {have or 'not installed'} (this project is tested with {pins.get(name, text)})")
            continue
        install.append(f"{name}=={pins[name]}" if name in pins else text)
    return install, kept


def installed_versions():
    distributions = importlib.metadata.distributions()
    return {dist.metadata["Name"].lower(): dist.version for dist in distributions if dist.metadata["Name"]}


def pinned_versions(requirements=PROJECT / "requirements.txt"):
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", Path(requirements).read_text(), re.M)
    return {name.lower(): version for name, version in found}


def install_lacking(pyproject=PROJECT / "pyproject.toml"):
    """Install what this Python lacks of the package's dependencies (pinned); returns (installed, kept)."""
    dependencies = tomllib.loads(Path(pyproject).read_text())["project"]["dependencies"]
    install, kept = lacking(dependencies, installed_versions(), pinned_versions())
    if install:
        run_and_show([sys.executable, "-m", "pip", "install", *install])
    return install, kept


def run_and_show(command):
    """Run `command`, printing its output line by line as it comes: a notebook shows nothing that a
    child process writes to its own standard output."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as child:
        for line in child.stdout:
            print(line, end="", flush=True)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)


def colab_cell(address):
    """The source of every notebook's first code cell: it acts only in Colab or Kaggle (laid out
    as `ruff format` lays out the notebooks)."""
    return f'''# Colab and Kaggle only (nothing happens elsewhere): get this project and what the hosted notebook lacks,
# then this notebook runs as on your machine (../{HOSTED_DOCS})
import importlib.util
import os
import subprocess
import sys

REPOSITORY = "{address}"  # pyproject.toml's [project.urls]
in_colab = importlib.util.find_spec("google") is not None and importlib.util.find_spec("google.colab") is not None
if in_colab or os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
    project = os.environ.setdefault("BIGCATS_PROJECT", os.path.abspath("bigcats"))
    if not os.path.isdir(project):
        source = os.environ.get("BIGCATS_REPOSITORY", REPOSITORY)
        if "{NOT_PUBLISHED}" in source:
            raise SystemExit(
                "This copy names no public repository yet: set BIGCATS_REPOSITORY to the address you "
                "opened this notebook from (%env BIGCATS_REPOSITORY=...), then run this cell again."
            )
        clone = subprocess.run(["git", "clone", "--depth", "1", source, project], capture_output=True, text=True)
        if clone.returncode:
            raise SystemExit(f"git clone {{source}} failed: {{clone.stderr}}")
    if project not in sys.path:
        sys.path.insert(0, project)
    os.chdir(project)
    from bigcats.__main__ import main  # python -m bigcats hosted-setup, shown here as it runs

    main(["hosted-setup"])
    os.chdir("notebooks")'''


def write_cells(notebook_dir=PROJECT / "notebooks"):
    """Put the Colab cell, with the repository's address, first among each notebook's code cells
    (replacing the one there); returns the notebooks changed."""
    import nbformat

    cell_source = colab_cell(repository())
    changed = []
    for path in sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = [c for c in notebook.cells if COLAB_CELL_TAG not in c.metadata.get("tags", [])]
        cell = nbformat.v4.new_code_cell(cell_source, metadata={"tags": [COLAB_CELL_TAG]})
        first_code = next(i for i, c in enumerate(cells) if c.cell_type == "code")
        updated = [*cells[:first_code], cell, *cells[first_code:]]
        if json.dumps([c.source for c in updated]) != json.dumps([c.source for c in notebook.cells]):
            for number, each in enumerate(updated):  # the notebooks number their cells in order
                each.id = str(number)
            notebook.cells = updated
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


if __name__ == "__main__":
    print("\n".join(map(str, write_cells())) or "every notebook's Colab cell is up to date")
