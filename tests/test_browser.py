"""JupyterLab as a learner meets it, in a real browser: notebook 01 opens on the project's kernel,
runs through the Run menu without an error, and shows the environment findings.

Needs Debian's chromium and chromium-driver (.ci/run installs them) and selenium
(requirements.txt); skips, saying why, where they are missing."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT

pytestmark = pytest.mark.browser
NOTEBOOK = "notebooks/01_environment_check.ipynb"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base, token, path):
    with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab from the project's environment on 127.0.0.1, stopped (with its children) after."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "BIGCATS_DATA_DIR": str(tmp_path / "data" / "raw"),
        "BIGCATS_MODELS_DIR": str(tmp_path / "models"),
        "BIGCATS_REPORTS_DIR": str(tmp_path / "reports"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no settings of this machine's user
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
    command += ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 -- closed after the server stops
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            api(base, token, "/api/status")
            break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(server.pid, signal.SIGTERM)
        pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
    yield base, token
    os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Chromium and its driver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1440,900",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver)
    session = webdriver.Chrome(options=options, service=service)
    yield session
    session.quit()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"waited {timeout} s for {what}")


def test_notebook_01_runs_in_jupyterlab_on_the_projects_kernel(jupyterlab, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, token = jupyterlab
    start = time.monotonic()
    browser.get(f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"), 120, "the notebook")
    kernel = wait_for(
        lambda: next(
            (e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-Toolbar-kernelName") if "bigcats" in e.text),
            None,
        ),
        60,
        "the kernel's name in the toolbar",
    )
    assert kernel == "Python (bigcats)"
    run_menu = next(e for e in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == "Run")
    run_menu.click()
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, '.lm-Menu-item[data-command="runmenu:run-all"]'), 10, "Run All"
    )
    browser.find_element(By.CSS_SELECTOR, '.lm-Menu-item[data-command="runmenu:run-all"]').click()

    def outputs():
        return "\n".join(
            e.get_attribute("textContent")
            for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type]")
        )

    wait_for(lambda: "Blocking problems:" in outputs(), 240, "the last cell's output")
    wait_for(
        lambda: all(s["kernel"]["execution_state"] == "idle" for s in api(base, token, "/api/sessions")),
        60,
        "an idle kernel",
    )
    browser.save_screenshot(str(tmp_path / "notebook-01.png"))
    text = outputs()
    errors = browser.find_elements(
        By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    assert not [
        e for e in errors if "Traceback" in e.get_attribute("textContent") or "Error" in e.get_attribute("textContent")
    ]
    assert "Traceback" not in text and "TensorFlow 2." in text and "this checkout's environment: yes" in text
    assert "Blocking problems: 0" in text and "harmless: " in text
    news = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-toast-message, .Toastify__toast")]
    assert not [message for message in news if "news" in message.lower()], news
    print(f"browser test: {time.monotonic() - start:.0f} s, screenshot {tmp_path / 'notebook-01.png'}")
