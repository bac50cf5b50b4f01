"""JupyterLab as a learner meets it, in a real browser: notebook 01 opens on the project's kernel,
runs through the Run menu without an error, and shows the environment findings.

Needs Debian's chromium and chromium-driver (.ci/run installs them) and selenium
(requirements.txt); skips, saying why, where they are missing."""

import shutil
import time

import pytest

from conftest import clone, git, jupyter_api, jupyterlab_in

pytestmark = pytest.mark.browser
NOTEBOOK = "notebooks/01_environment_check.ipynb"


@pytest.fixture
def checkout(tmp_path):
    """A fresh clone, as a learner has it."""
    return clone(tmp_path, "learner")


@pytest.fixture
def jupyterlab(checkout, tmp_path):
    """JupyterLab from the project's environment, in the clone, on 127.0.0.1."""
    with jupyterlab_in(checkout, tmp_path) as server:
        yield server


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


def test_notebook_01_runs_in_jupyterlab_on_the_projects_kernel(jupyterlab, browser, checkout, tmp_path):
    from selenium.webdriver.common.by import By

    base, token = jupyterlab
    start = time.monotonic()
    browser.get(f"{base}/lab/tree/{NOTEBOOK.removeprefix('notebooks/')}?reset&token={token}")
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
        lambda: all(s["kernel"]["execution_state"] == "idle" for s in jupyter_api(base, token, "/api/sessions")),
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
    # saved as a learner saves (Ctrl+S): the outputs stay on screen, the file stays as committed
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    saved_before = jupyter_api(base, token, "/api/contents/" + NOTEBOOK.removeprefix("notebooks/"))["last_modified"]
    browser.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell").click()
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    wait_for(
        lambda: (
            jupyter_api(base, token, "/api/contents/" + NOTEBOOK.removeprefix("notebooks/"))["last_modified"]
            != saved_before
        ),
        30,
        "the save",
    )
    assert "Blocking problems:" in outputs()  # still on screen
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert '"output_type"' not in (checkout / NOTEBOOK).read_text()
    print(f"browser test: {time.monotonic() - start:.0f} s, screenshot {tmp_path / 'notebook-01.png'}")
