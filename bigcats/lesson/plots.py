"""Lesson: the figures the notebooks draw inline (and the command line saves as PNG).

Each function returns a matplotlib Figure; in a notebook it shows below the cell.
"""

import matplotlib.pyplot as plt
import numpy as np


def _per_epoch(ax, quantity):
    """The axes of a per-epoch curve: labelled, a light grid, a legend."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(quantity)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_history(history, title="Training"):
    """Loss and accuracy per epoch, training vs validation."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "o-", label=f"training {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", label=f"validation {metric}")
        _per_epoch(ax, metric)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_runs(runs, title="Loss per epoch, two runs"):
    """Training (dashed) and validation (solid) loss per epoch of several runs on one plot,
    {run name: history}: where a run's training loss falls far below its validation loss, it
    memorises its training photos."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (name, history), colour in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        epochs = np.arange(1, len(history["loss"]) + 1)
        ax.plot(epochs, history["loss"], "--", color=colour, label=f"{name}: training")
        ax.plot(epochs, history["val_loss"], "o-", color=colour, label=f"{name}: validation")
    _per_epoch(ax, "loss")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_split_counts(split_counts, title="Images per class and split"):
    """Grouped bars: {split: {class: count}}."""
    splits = list(split_counts)
    classes = list(next(iter(split_counts.values())))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(classes)
    for i, name in enumerate(classes):
        counts = [split_counts[s][name] for s in splits]
        bars = ax.bar(np.arange(len(splits)) + i * width, counts, width, label=name)
        ax.bar_label(bars)
    ax.set_xticks(np.arange(len(splits)) + width * (len(classes) - 1) / 2, splits)
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def _as_pixels(image):
    # Augmented images can leave [0, 255] (colour changes); a bare uint8 cast would wrap 256 to 0
    # and paint bright fur purple.
    return np.clip(np.asarray(image), 0, 255).astype("uint8")


def show_images(images, captions, title="", columns=6):
    """A grid of RGB images (arrays in [0, 255]) with a caption under each."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(_as_pixels(image))
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, class_names, title="Confusion matrix"):
    """Counts per (true class: row, predicted class: column), as a shaded grid with the numbers."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
            fontsize=14,
        )
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_bars(labels, values, ylabel, title, annotate="{:.1f}"):
    """One bar per device (matrix-multiply GFLOP/s, training images/s...)."""
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(labels)), 4))
    bars = ax.bar(labels, values, color=["tab:blue" if "CPU" in label.upper() else "tab:green" for label in labels])
    ax.bar_label(bars, labels=[annotate.format(v) for v in values])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_roc(curves, title="ROC curve"):
    """curves: {label: (fpr, tpr, auc)}. The diagonal is a coin toss."""
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=2, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def show_heatmaps(images, heatmaps, captions, title=""):
    """Each image beside itself with its Grad-CAM heat map laid over it."""
    fig, axes = plt.subplots(2, len(images), figsize=(2.4 * len(images), 5), squeeze=False)
    for col, (image, heat, caption) in enumerate(zip(images, heatmaps, captions)):
        axes[0, col].imshow(_as_pixels(image))
        axes[0, col].set_title(caption, fontsize=8)
        axes[1, col].imshow(_as_pixels(image))
        axes[1, col].imshow(heat, cmap="jet", alpha=0.45)
        for row in range(2):
            axes[row, col].axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_feature_maps(image, maps, title="", count=7):
    """One photo and the first `count` channels of a layer's output for it, side by side:
    what a layer "sees" (bright = strong response)."""
    maps = np.asarray(maps)
    fig, axes = plt.subplots(1, count + 1, figsize=(2.0 * (count + 1), 2.4))
    axes[0].imshow(_as_pixels(image))
    axes[0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=8)
    for channel, ax in enumerate(axes[1:]):
        ax.imshow(maps[..., channel], cmap="magma")
        ax.set_title(f"channel {channel} ({maps.shape[0]}x{maps.shape[1]})", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
