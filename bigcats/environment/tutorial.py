"""Environment tool: running the notebooks headless, in order, as a learner would run them in JupyterLab."""

import tempfile
import time
from pathlib import Path

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def notebook_paths(notebook_dir):
    return sorted(Path(notebook_dir).glob(NOTEBOOK_GLOB))


def run_notebook(path, output_path, timeout=3600, kernel_name="python3"):
    """Execute one notebook in a fresh kernel, working directory = its folder (relative paths
    resolve as in JupyterLab). The executed copy is written even when a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="bigcats-kernel-") as sockets:
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(Path(path).parent)}},
            config=_kernel_sockets(sockets),
        )
        try:
            client.execute()
        finally:
            Path(output_path).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, output_path)
    return notebook


def _kernel_sockets(folder):
    """How the kernel is reached: over local sockets in `folder` where the system has them (an
    absolute path: the kernel runs in the notebook's folder), else Jupyter's TCP default."""
    from traitlets.config import Config

    from bigcats.environment.machine import KERNEL_TRANSPORT

    if KERNEL_TRANSPORT != "ipc":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder, "kernel"))}})


def run_all(notebook_dir="notebooks", output_dir=None, timeout=3600, progress=True):
    """Run every numbered notebook in order; returns [(name, seconds)]. Executed copies go to
    output_dir (default notebook_dir/executed), so the committed notebooks stay output-free."""
    from tqdm import tqdm

    notebook_dir = Path(notebook_dir)
    output_dir = Path(output_dir or notebook_dir / "executed")
    paths = notebook_paths(notebook_dir)
    if not paths:
        raise FileNotFoundError(f"No numbered notebooks in {notebook_dir}")
    timings = []
    bar = tqdm(paths, desc="Notebooks", unit="notebook", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.name)
        start = time.perf_counter()
        run_notebook(path, output_dir / path.name, timeout)
        timings.append((path.name, time.perf_counter() - start))
    return timings
