"""The Keras code the notebooks teach is the code the command line runs: the model that notebook
04 writes out layer by layer is `bigcats.lesson.model.build_cnn`, its input pipeline gives the batches of
`bigcats.lesson.data.make_dataset`, and notebook 07's head is
`bigcats.lesson.transfer.add_head`, so the lesson and the package cannot drift apart."""

import ast
import importlib
import inspect

import keras
import nbformat
import numpy as np
import pytest
from keras import layers

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"


def taught(notebook, tag="model", **imports):
    """The functions a notebook defines in its cells tagged `tag`, run as the notebook runs them
    (with the modules its setup cell imports: keras, layers, np, and any `imports`)."""
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    sources = [cell.source for cell in cells if tag in cell.metadata.get("tags", [])]
    assert sources, f"{notebook} has no cell tagged {tag!r}"
    namespace = {"keras": keras, "layers": layers, "np": np, **imports}
    for source in sources:
        exec(compile(source, f"{notebook}[{tag}]", "exec"), namespace)  # our own notebook
    return namespace


def architecture(model):
    """Every layer's type and configuration (less its generated name), in order, and how layers connect."""
    described = []
    for layer in model.layers:
        config = layer.get_config()
        config.pop("name", None)
        inbound = [node.operation.__class__.__name__ for node in getattr(layer, "_inbound_nodes", [])]
        described.append((type(layer).__name__, config, len(inbound)))
    return described


def fixed_weights(model):
    return [weight.numpy() for layer in model.layers for weight in layer.non_trainable_weights if not layer.trainable]


def assert_same_network(ours, theirs):
    assert architecture(ours) == architecture(theirs)
    assert ours.count_params() == theirs.count_params()
    assert ours.name == theirs.name
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    for mine, package in zip(fixed_weights(ours), fixed_weights(theirs), strict=True):
        np.testing.assert_array_equal(mine, package)  # the blur kernels, set once, never trained


@pytest.mark.parametrize("image_size, num_classes", [(144, 2), (32, 3)])
def test_notebook_04_builds_the_package_cnn(image_size, num_classes):
    from bigcats.lesson.model import build_cnn

    notebook = taught("04_train_cnn.ipynb")
    keras.utils.set_random_seed(1)
    ours = notebook["build_model"](image_size, num_classes)
    keras.utils.set_random_seed(1)
    theirs = build_cnn(image_size, num_classes=num_classes)
    assert_same_network(ours, theirs)
    # the same seed gives the same starting weights, so the notebook trains the command line's model
    for mine, package in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, package)


def test_a_changed_notebook_model_is_caught():
    """The comparison can fail: one filter count changed is a different network."""
    from bigcats.lesson.model import build_cnn

    ours = taught("04_train_cnn.ipynb")["build_model"](32, 2, filters=(32, 64, 128, 256, 256))
    with pytest.raises(AssertionError):
        assert_same_network(ours, build_cnn(32))


def test_notebook_07_adds_the_package_head():
    from bigcats.lesson.transfer import add_head

    base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    base.trainable = False
    ours = taught("07_transfer_learning.ipynb")["add_head"](base, 2)
    assert_same_network(ours, add_head(base, 2))


@pytest.mark.parametrize(
    "notebook, lines",
    [
        ("04_train_cnn.ipynb", ["keras.Input(", "layers.SeparableConv2D(", "model.compile(", "model.fit("]),
        ("05_evaluate_and_predict.ipynb", ["keras.models.load_model(", "safe_mode=True", "model.predict("]),
        ("07_transfer_learning.ipynb", ["base.trainable = False", "model.compile(", "model.fit(", "model.evaluate("]),
    ],
)
def test_the_keras_lines_stand_in_the_notebook(notebook, lines):
    code = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells if c.cell_type == "code")
    for line in lines:
        assert line in code, f"{notebook} should show {line}"


def functions_called_from(notebook):
    """(module, name) of every bigcats function or class a notebook's code calls."""
    code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    tree = ast.parse(code)
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bigcats"):
            imported.update({alias.asname or alias.name: (node.module, alias.name) for alias in node.names})
    for node in ast.walk(tree):
        function = node.func if isinstance(node, ast.Call) else None
        if isinstance(function, ast.Name) and function.id in imported:
            yield imported[function.id]
        elif isinstance(function, ast.Attribute) and getattr(function.value, "id", None) in imported:
            module, name = imported[function.value.id]
            yield f"{module}.{name}", function.attr


def test_the_functions_the_notebooks_call_say_what_they_do():
    undocumented = set()
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for module, name in functions_called_from(notebook):
            target = getattr(importlib.import_module(module), name)
            if callable(target) and not inspect.getdoc(target):
                undocumented.add(f"{module}.{name} (called in {notebook.name})")
    assert not undocumented, f"give these a docstring: {sorted(undocumented)}"


def batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def test_notebook_04_pipeline_is_the_package_pipeline(tiny_data):
    """The tf.data pipeline notebook 04 writes in its cells gives the batches the command line trains on."""
    import tensorflow as tf

    from bigcats.lesson import data

    namespace = taught("04_train_cnn.ipynb", "pipeline", tf=tf, data=data)
    make_pipeline = namespace["make_pipeline"]
    items = data.split_images(tiny_data)["train"]

    def as_is(path, turn):
        return data.load_image(path, 32, turn)

    def for_training(path, turn):
        return data.load_for_augmenting(path, 32, turn)

    ours = batches(make_pipeline(items, as_is, 8))
    for mine, package in zip(ours, batches(data.make_dataset(items, 32, 8)), strict=True):
        np.testing.assert_array_equal(mine[0], package[0])
        np.testing.assert_array_equal(mine[1], package[1])
    # training: the same photos every epoch, in a new order, as the command line decodes them for augmenting
    training = make_pipeline(items, for_training, 8, training=True, seed=1)
    epoch_one, epoch_two = batches(training), batches(training)
    assert not np.array_equal(epoch_one[0][0], epoch_two[0][0]), "a new order every epoch"
    package = batches(data.make_dataset(items, 32, 8, training=True, seed=1, augment_in="step"))

    def photos(epoch):
        images = np.concatenate([images for images, _ in epoch])
        labels = np.concatenate([labels for _, labels in epoch])
        order = np.lexsort(images.reshape(len(images), -1).T)
        return images[order], labels[order]

    for mine, theirs in zip(photos(epoch_one), photos(package), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert epoch_one[0][0].dtype == package[0][0].dtype == np.uint8
    assert [len(labels) for _, labels in epoch_one] == [len(labels) for _, labels in package]


def test_a_changed_notebook_pipeline_is_caught(tiny_data):
    """The comparison can fail: photos read at another size are other batches."""
    import tensorflow as tf

    from bigcats.lesson import data

    make_pipeline = taught("04_train_cnn.ipynb", "pipeline", tf=tf, data=data)["make_pipeline"]
    items = data.split_images(tiny_data)["val"]
    ours = batches(make_pipeline(items, lambda path, turn: data.load_image(path, 30, turn), 8))
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(ours[0][0], batches(data.make_dataset(items, 32, 8))[0][0])
