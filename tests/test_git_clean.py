"""A learner's runs never show up as changes: JupyterLab (from the project's environment) saves
the tutorial's notebooks in their committed form, and nbstripout, the clone's git filter, keeps
outputs out of any commit."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, clone, git, jupyter_api, jupyterlab_in


def run_as_a_learner(notebook):
    """What a run in JupyterLab leaves in a notebook: outputs, counts, the kernel's Python version,
    an output collapsed and one scrolled, the timings JupyterLab records when asked to."""
    for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a learner's output\n")]
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-02T14:00:37.783877Z"}
        cell.metadata["collapsed" if count % 2 else "scrolled"] = True
    notebook.metadata.language_info["version"] = "3.12.9"  # the kernel's Python fills this in
    return notebook


def save_as_jupyterlab_would(path):
    nbformat.write(run_as_a_learner(nbformat.read(path, as_version=4)), path)


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


@pytest.mark.slow
def test_jupyterlab_saves_a_run_tutorial_notebook_as_committed_so_git_pull_works(tmp_path, nbstripout):
    """A real JupyterLab from the project's environment, started as the README starts it (nothing
    handed in by the test): a run notebook saved through its contents API, as JupyterLab's save
    and autosave do, lands on disk as committed; a learner's own notebook keeps its outputs."""
    checkout = clone(tmp_path, "learner")
    committed = (checkout / "notebooks" / "04_train_cnn.ipynb").read_bytes()
    with jupyterlab_in(checkout, tmp_path) as (base, token):
        model = jupyter_api(base, token, "/api/contents/04_train_cnn.ipynb")
        notebook = run_as_a_learner(nbformat.from_dict(model["content"]))
        for name in ("04_train_cnn.ipynb", "mine.ipynb"):
            body = {"type": "notebook", "format": "json", "content": notebook}
            jupyter_api(base, token, f"/api/contents/{name}", method="PUT", body=body)
    assert git("status", "--porcelain", cwd=checkout) == "?? notebooks/mine.ipynb\n"  # the tutorial's: as committed
    on_disk = (checkout / "notebooks" / "04_train_cnn.ipynb").read_text()
    assert "a learner's output" not in on_disk and '"execution_count": null' in on_disk
    assert (checkout / "notebooks" / "04_train_cnn.ipynb").read_bytes() == committed
    assert "a learner's output" in (checkout / "notebooks" / "mine.ipynb").read_text()  # a learner's own: kept


def test_setup_writes_the_save_hook_where_jupyter_server_applies_it(tmp_path):
    """In the environment's jupyter_server_config.json, merged with what is there; not in
    jupyter_server_config.d/, which Jupyter Server reads only to enable extensions."""
    import json

    from bigcats.environment.setup_plan import write_lab_settings

    config_dir = tmp_path / "etc" / "jupyter"
    (config_dir / "jupyter_server_config.d").mkdir(parents=True)
    (config_dir / "jupyter_server_config.d" / "bigcats.json").write_text("{}")  # an earlier setup's
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"open_browser": False}}))
    write_lab_settings(tmp_path)
    config = json.loads((config_dir / "jupyter_server_config.json").read_text())
    assert config["ContentsManager"]["pre_save_hook"] == "bigcats.environment.jupyter_hooks.strip_tutorial_outputs"
    assert config["ServerApp"] == {"open_browser": False}
    assert not (config_dir / "jupyter_server_config.d" / "bigcats.json").exists()


def test_the_hook_name_earlier_setups_wrote_still_imports():
    """An environment set up before the package had its parts names the hook by its old path;
    JupyterLab there must still start after a `git pull` (setup_env writes the new name)."""
    from traitlets.utils.importstring import import_item

    from bigcats.environment import jupyter_hooks
    from bigcats.environment.setup_plan import SERVER_SETTINGS

    old = import_item("bigcats.jupyter_hooks.strip_tutorial_outputs")
    assert old is jupyter_hooks.strip_tutorial_outputs
    assert import_item(SERVER_SETTINGS["ContentsManager"]["pre_save_hook"]) is old
