"""The notebooks: committed clean, and each runs top to bottom, in order, on tiny data."""

import json
import re
import subprocess

import nbformat
import pytest

from bigcats.environment.tutorial import notebook_paths, run_notebook
from conftest import ROOT, jpeg_bytes, random_rgb, require_backend

NOTEBOOKS = notebook_paths(ROOT / "notebooks")
EXPECTED = [
    "01_environment_check",
    "02_gpu_detection",
    "03_load_and_clean_images",
    "04_train_cnn",
    "05_evaluate_and_predict",
    "06_cpu_vs_gpu_benchmark",
    "07_transfer_learning",
]


def read(path):
    return nbformat.read(path, as_version=4)


def committed(path):
    """The notebook as committed (git's HEAD), whatever a learner's JupyterLab saved since; from
    disk where this is no git checkout."""
    shown = subprocess.run(
        ["git", "show", f"HEAD:{path.relative_to(ROOT).as_posix()}"], cwd=ROOT, capture_output=True, text=True
    )
    return nbformat.reads(shown.stdout, as_version=4) if shown.returncode == 0 else read(path)


def test_notebooks_are_numbered_in_order():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in committed(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: outputs are committed; clear them"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = read(path)
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "env_param(" in tagged[0].source, "parameters are overridable by environment variables"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "next steps" in nb.cells[-1].source.lower()
    if path.stem >= "03":
        assert "## Exercises" in nb.cells[-1].source, "notebooks from 03 on end with exercises"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "hosted" in code[0].metadata.get("tags", []), "the first code cell acts in Colab and Kaggle only"
    assert "hide_harmless_lines()" in code[1].source, "the next one hides TensorFlow's start-up lines"
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"^\s*[!%]\s*pip\b", source, re.M), "no pip install cells"
    assert not re.search(r"[\"'](/|[A-Za-z]:\\\\)(home|Users|root|work|tmp)", source), "no absolute paths"


# a measured figure in prose: a rate, an accuracy, a time
MEASURED = re.compile(r"photos/s|\b0\.\d\d\d?\b|\b\d+(?:\.\d+)? ?(?:ms|s)\b")
RECORD_DATE = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} 20\d\d\b")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_in_the_prose_say_whose_they_are(path):
    """A figure the text states is not this run's: it links the record in docs/ that holds it, or
    says it is the record's, with the date it was measured (the machine beside it)."""
    for cell in read(path).cells:
        if cell.cell_type == "markdown" and MEASURED.search(cell.source) and "](../docs/" not in cell.source:
            assert "record's figures" in cell.source and RECORD_DATE.search(cell.source), (
                f"{path.name}: {MEASURED.search(cell.source).group()!r} in {cell.source[:80]!r}: link its record in docs/"
            )


def png_count(nb):
    return sum(
        1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    )


# TensorFlow's C++ log lines: "I0000 00:00:1796120351.03 3927 port.cc:153] ..." and absl's pre-init warning
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]|absl::InitializeLog", re.M)


# what a learner should not see: the second half of TensorFlow's CPU-instructions line, Keras
# warning that it ignores shuffle=True (the lesson is shuffle=False for a pipeline that shuffles)
STRAY_LINE = re.compile(r"To enable the following instructions|`shuffle=True` was passed")


PROGRESS_TEXT = re.compile(r"\d+%\|")  # tqdm's text bar: " 40%|####      | 4/10"
# Runs in every kernel the test starts (IPython's startup folder), before the notebook imports
# matplotlib, so it sees each cell's figures before the inline backend closes them.
RECORD_TITLES = """
import json, os, sys


def _record_titles(*_):
    if "matplotlib.pyplot" not in sys.modules:
        return
    plt = sys.modules["matplotlib.pyplot"]
    with open(os.environ["BIGCATS_TEST_TITLES"], "a", encoding="utf-8") as log:
        for number in plt.get_fignums():
            figure = plt.figure(number)
            titles = [figure._suptitle.get_text() if figure._suptitle else ""] + [ax.get_title() for ax in figure.axes]
            log.write(json.dumps(titles) + "\\n")


get_ipython().events.register("post_execute", _record_titles)
"""
FLOAT_NOISE = re.compile(r"\d\.\d{9,}")  # a float printed whole (0.9990000128746033) instead of rounded


def stderr_of(nb):
    return "".join(
        out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []) if out.get("name") == "stderr"
    )


def text_of(nb):
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.slow
def test_every_notebook_runs_in_order_on_tiny_data(tiny_data, tmp_path, monkeypatch):
    import keras

    before = {p: p.read_bytes() for p in NOTEBOOKS}  # as they are on disk now, a learner's saves and all
    weights = tmp_path / "mobilenet_v2_no_top.weights.h5"  # stands in for the ImageNet download
    keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None).save_weights(weights)
    # Plant bad files that notebook 03 must move aside before 04 can train.
    (tiny_data / "lion" / "truncated.jpg").write_bytes(jpeg_bytes(random_rgb(1))[:300])
    (tiny_data / "tiger" / "webpage.jpg").write_text("<html><body>404 Not Found</body></html>")
    env = {
        "BIGCATS_DATA_DIR": tiny_data,
        "BIGCATS_MODELS_DIR": tmp_path / "models",
        "BIGCATS_REPORTS_DIR": tmp_path / "reports",
        "BIGCATS_QUARANTINE_DIR": tmp_path / "quarantine",
        "BIGCATS_EPOCHS": 2,
        "BIGCATS_PLAIN_EPOCHS": 2,
        "BIGCATS_IMAGE_SIZE": 32,
        "BIGCATS_BATCH_SIZE": 8,
        "BIGCATS_MATMUL_SIZE": 128,
        "BIGCATS_BENCH_STEPS": 2,
        "BIGCATS_BENCH_REPEATS": 1,
        "BIGCATS_BENCH_LARGE_PHOTOS": 2,
        "BIGCATS_BENCH_LARGE_SIDE": 600,
        "BIGCATS_SAMPLES": 4,
        "BIGCATS_WEIGHTS": weights,
        "BIGCATS_TRANSFER_IMAGE_SIZE": 64,
        "BIGCATS_TRANSFER_EPOCHS": 1,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "record_titles.py").write_text(RECORD_TITLES)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    executed, titles = {}, {}
    for path in NOTEBOOKS:
        log = tmp_path / f"{path.stem}.titles"
        monkeypatch.setenv("BIGCATS_TEST_TITLES", str(log))
        executed[path.stem] = run_notebook(path, tmp_path / "executed" / path.name, timeout=600)
        titles[path.stem] = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    # On synthetic photos every figure of the photos says so (01 and 02 draw none); one of random
    # pixels says that instead.
    for name, figures in titles.items():
        if name >= "03":
            assert figures, f"{name} drew no figure"
            untagged = [
                titles
                for titles in figures
                if not any(tag in " ".join(titles) for tag in ("[SYNTHETIC", "random pixels"))
            ]
            assert not untagged, f"{name}: figures without the synthetic tag: {untagged}"

    # No wall of red: TensorFlow's harmless start-up lines are hidden (where there is no GPU, they all are).
    from bigcats.environment.machine import has_nvidia_device

    if not has_nvidia_device():
        for name, notebook in executed.items():
            assert not TF_LOG_LINE.search(stderr_of(notebook)), f"{name}: {TF_LOG_LINE.search(stderr_of(notebook))}"
    for name, notebook in executed.items():  # nor the half of a hidden line, nor warnings against the lesson
        assert not STRAY_LINE.search(text_of(notebook)), f"{name}: {STRAY_LINE.search(text_of(notebook))}"
        # what JupyterLab shows in red boxes: no empty ones, no progress bars drawn as text (those are widgets)
        red = [out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", []) if out.get("name") == "stderr"]  # fmt: skip
        assert all(text.strip() for text in red), f"{name}: an empty stderr output"
        assert not [text for text in red if PROGRESS_TEXT.search(text)], f"{name}: a progress bar as text on stderr"
        assert not FLOAT_NOISE.search(text_of(notebook)), f"{name}: {FLOAT_NOISE.search(text_of(notebook))}"
        hosted, first = [c for c in notebook.cells if c.cell_type == "code"][:2]
        assert hosted.outputs == [], f"{name}: the Colab cell did something outside Colab"
        shown = [o.get("data", {}).get("text/plain") for o in first.outputs]
        assert "True" not in shown, f"{name}: the kernel-check cell shows a bare True"
    # 01: the report names the installed TensorFlow; the start-up lines are shown once, explained.
    assert "TensorFlow 2." in text_of(executed["01_environment_check"])
    assert "harmless: " in text_of(executed["01_environment_check"])
    listed = [line for line in text_of(executed["01_environment_check"]).splitlines() if "harmless: " in line]
    assert len(listed) == len(set(listed)), "each start-up line listed once"
    # 02: devices listed, matmul timed and plotted.
    assert "GFLOP/s" in text_of(executed["02_gpu_detection"])
    assert png_count(executed["02_gpu_detection"]) == 1
    # 03: both planted files moved aside with a reason; nothing lost; two plots.
    report = json.loads((tmp_path / "reports" / "clean_report.json").read_text())
    moved = {q["file"]: q["reason"] for q in report["quarantined"]}
    assert "corrupt or truncated" in moved["lion/truncated.jpg"]
    assert "not an image" in moved["tiger/webpage.jpg"]
    assert (tmp_path / "quarantine" / "lion" / "truncated.jpg").exists()
    assert "tiger/webpage.jpg" in (tmp_path / "quarantine" / "REASONS.txt").read_text(encoding="utf-8")
    assert report["kept"] == 32
    assert png_count(executed["03_load_and_clean_images"]) == 2
    assert "images in more than one split: 0" in text_of(executed["03_load_and_clean_images"])
    # 04: a model and its history; 2 epochs as asked; curves and augmentation drawn.
    model = tmp_path / "models" / "lion_tiger_cnn.keras"
    history = json.loads(model.with_suffix(".history.json").read_text())
    assert model.stat().st_size > 10_000
    assert history["epochs_run"] == 2 and history["image_size"] == 32
    assert not (tmp_path / "models" / "lion_tiger_cnn.backup").exists()  # the model is whole: no state to resume
    # augmentation, a shrink two ways, the stem's maps, the curves, overfitting shown
    assert png_count(executed["04_train_cnn"]) == 5
    assert re.search(
        r"without augmentation and dropout: training loss \d\.\d{3}, validation loss \d\.\d{3} \(\d+\.\dx\)",
        text_of(executed["04_train_cnn"]),
    )
    # 04 trained with the command line's settings (the network itself: test_notebook_code.py)
    import keras

    from bigcats.lesson import config

    saved = keras.models.load_model(model, safe_mode=True)
    assert saved.name == "bigcats_cnn" and saved.input_shape == (None, 32, 32, 3)
    assert history["learning_rate"] == config.LEARNING_RATE and history["schedule"] == "cosine"
    # 05: metrics printed; confusion matrix, hardest images, ROC, Grad-CAM, predictions drawn.
    text05 = text_of(executed["05_evaluate_and_predict"])
    assert "No trained model" not in text05  # notebook 04's model, reloaded
    accuracy = float(re.search(r"accuracy (\d\.\d+)", text05).group(1))
    assert 0.0 <= accuracy <= 1.0
    assert "RGB (right)" in text05
    hard = float(re.search(r"hard copies of the same:\s+accuracy (\d\.\d+)", text05).group(1))
    assert 0.0 <= hard <= 1.0 and len(list((tmp_path / "reports" / "stress_test").rglob("*.jpg"))) > 0
    looks = re.findall(r"hard copies, (?:one|two) looks?:\s+accuracy (\d\.\d+)", text05)
    assert len(looks) == 2 and float(looks[1]) == hard  # the two looks are what evaluate_model reports
    assert png_count(executed["05_evaluate_and_predict"]) == 7  # + the hardest hard copies, the photos as RGB and BGR
    assert re.search(r"hard copies: \d+ of \d+ misclassified with two looks", text05)
    assert re.search(r"BGR \(wrong\): accuracy \d\.\d+", text05)
    # 06: a figure per device and for the pipeline; no GPU here, and it says so.
    bench = json.loads((tmp_path / "reports" / "benchmark.json").read_text())
    assert bench["devices"][0]["images_per_second"] > 0
    assert bench["pipeline"]["ratio"] > 0 and bench["pipeline"]["augmented_images_per_second"] > 0
    if bench["pipeline"]["ratio"] < 1:  # against the lesson on a few tiny files: the notebook says why
        assert "Here tf.data read" in text_of(executed["06_cpu_vs_gpu_benchmark"])
    # whether the pipeline or the device sets the pace, said once, in the pipeline section
    assert text_of(executed["06_cpu_vs_gpu_benchmark"]).count("augmented photos/s") == 1
    assert png_count(executed["06_cpu_vs_gpu_benchmark"]) == 2
    assert "photos/s (one training step of 8 photos, median of 1)" in text_of(executed["06_cpu_vs_gpu_benchmark"])
    if not any(d["kind"] == "GPU" for d in bench["devices"]):
        assert bench["gpu_speedup"] is None and "No GPU" in " ".join(bench["notes"])
    # 07: trained from the local weights file; both models scored.
    text07 = text_of(executed["07_transfer_learning"])
    assert "SKIPPING" not in text07 and (tmp_path / "models" / "lion_tiger_mobilenetv2.keras").is_file()
    assert "NO PRETRAINED WEIGHTS" not in text07
    transfer_record = json.loads((tmp_path / "models" / "lion_tiger_mobilenetv2.history.json").read_text())
    assert transfer_record["epochs_run"] == 2 and transfer_record["train_seconds"] > 0  # the head, then fine-tuning
    assert text07.count("test accuracy") == 2 and png_count(executed["07_transfer_learning"]) == 1
    # Running them wrote nothing into the tutorial's notebooks.
    assert {p: p.read_bytes() for p in NOTEBOOKS} == before


def tiny_settings(monkeypatch, tmp_path, data, **more):
    """The notebooks' parameters for a quick run on `data`, with results under tmp_path."""
    settings = {"BIGCATS_DATA_DIR": data, "BIGCATS_MODELS_DIR": tmp_path / "models",
                "BIGCATS_REPORTS_DIR": tmp_path / "reports", "BIGCATS_EPOCHS": 1, "BIGCATS_IMAGE_SIZE": 32, **more}  # fmt: skip
    for key, value in settings.items():
        monkeypatch.setenv(key, str(value))


@pytest.mark.slow
def test_notebook_05_opened_first_trains_the_model_it_needs(tiny_data, tmp_path, monkeypatch):
    tiny_settings(monkeypatch, tmp_path, tiny_data)
    path = next(p for p in NOTEBOOKS if p.stem == "05_evaluate_and_predict")
    executed = run_notebook(path, tmp_path / "executed" / path.name, timeout=600)
    text = text_of(executed)
    assert "No trained model at" in text and "training one now" in text
    history = json.loads((tmp_path / "models" / "lion_tiger_cnn.history.json").read_text())
    assert history["epochs_run"] == 1 and history["image_size"] == 32
    assert re.search(r"accuracy (\d\.\d+)", text) and png_count(executed) == 7


@pytest.mark.slow
def test_notebook_07_offline_without_weights_says_random_weights_on_every_figure(tiny_data, tmp_path, monkeypatch):
    offline = tmp_path / "no-such-weights.h5"  # as offline, without a download
    tiny_settings(monkeypatch, tmp_path, tiny_data, BIGCATS_TRANSFER_IMAGE_SIZE=32, BIGCATS_TRANSFER_EPOCHS=1,
                  BIGCATS_WEIGHTS=offline)  # fmt: skip
    path = next(p for p in NOTEBOOKS if p.stem == "07_transfer_learning")
    executed = run_notebook(path, tmp_path / "executed" / path.name, timeout=600)
    text = text_of(executed)
    assert "NO PRETRAINED WEIGHTS" in text and "expect about chance" in text
    accuracy = next(line for line in text.splitlines() if line.startswith("MobileNetV2 + new head"))
    assert "[RANDOM WEIGHTS, not pretrained]" in accuracy
    plotted = next(c for c in executed.cells if "plot_history(" in c.source)
    assert "{RANDOM}" in plotted.source and png_count(executed) == 1  # the curves' title says so too
    assert not (tmp_path / "models" / "lion_tiger_mobilenetv2.keras").exists()  # not saved


@pytest.mark.slow
def test_notebooks_04_and_05_train_and_predict_with_keras_on_torch(tiny_data, tmp_path, monkeypatch):
    """Where TensorFlow cannot reach the GPU, Keras trains on PyTorch: the same lesson, the same cells."""
    require_backend("torch")
    tiny_settings(monkeypatch, tmp_path, tiny_data, BIGCATS_EPOCHS=2, BIGCATS_BATCH_SIZE=8, KERAS_BACKEND="torch")
    executed = {}
    for name in ("04_train_cnn", "05_evaluate_and_predict"):
        path = next(p for p in NOTEBOOKS if p.stem == name)
        executed[name] = run_notebook(path, tmp_path / "executed" / path.name, timeout=600)
    record = json.loads((tmp_path / "models" / "lion_tiger_cnn.history.json").read_text())
    assert record["backend"]["backend"] == "torch" and record["setup"]["augmentation"] == "step"
    assert "Keras on torch: one device" in text_of(executed["04_train_cnn"])
    assert re.search(r"accuracy (\d\.\d+)", text_of(executed["05_evaluate_and_predict"]))
