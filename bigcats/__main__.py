"""Command line: `python -m bigcats COMMAND ...` (see `python -m bigcats --help`).

With --json, standard output carries only the JSON; progress bars, logs and TensorFlow's own
messages go to standard error, so the output can be piped into other tools.
"""

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from bigcats.lesson import config
from bigcats.lesson.clean import BadImagesError
from bigcats.lesson.evaluate import ModelLoadError
from bigcats.lesson.fetch import DEFAULT_URL, FetchError

# Mistakes a user can fix: printed as one clear line, not a traceback.
USER_ERRORS = (BadImagesError, ModelLoadError, FetchError, OSError, ValueError)

DEFAULT_DATA = config.DATA_DIR
DEFAULT_MODEL = f"models/{config.MODEL_NAME}"


def _emit(args, obj, text=None):
    """JSON to the real standard output (saved before it was pointed at stderr), else text."""
    if args.json:
        print(json.dumps(obj), file=args.stdout, flush=True)
    else:
        print(text if text is not None else json.dumps(obj, indent=2))


def cmd_doctor(args):
    from bigcats.environment.doctor import format_report, gather_facts, report

    if args.explain:
        return _explain(args)
    # TensorFlow runs only in the doctor's child processes: an import that crashes is a finding here
    rep = report(gather_facts())
    _emit(args, rep, format_report(rep))
    return 0


def _explain(args):
    from bigcats.environment.machine import has_nvidia_device
    from bigcats.environment.tf_errors import explain

    text = sys.stdin.read() if args.explain == "-" else Path(args.explain).read_text(errors="replace")
    findings = explain(text, gpu_present=has_nvidia_device())
    lines = [f"[{f['severity'].upper()}] {f['message']}\n    fix: {f['fix']}" for f in findings]
    if not findings:
        lines = ["Nothing in it matches a known TensorFlow problem. `python -m bigcats doctor` checks this machine."]
    _emit(args, {"findings": findings}, "\n".join(lines))
    return 0


def cmd_clean(args):
    from bigcats.lesson.clean import REASONS_FILE, clean_folder

    rep = clean_folder(args.data_dir, args.quarantine, dry_run=args.dry_run, report_path=args.report)
    verb = "would move" if args.dry_run else "moved"
    lines = [
        f"checked {rep['checked']} files: {rep['kept']} kept, {len(rep['quarantined'])} {verb} to {rep['quarantine_dir']}"
    ]
    lines += [f"  {q['file']}: {q['reason']}" for q in rep["quarantined"]]
    if rep["quarantined"] and not args.dry_run:
        lines.append(f"(the reasons are also in {Path(rep['quarantine_dir']) / REASONS_FILE})")
    lines += [f"  note {n['file']}: {'; '.join(n['notes'])}" for n in rep["notes"]]
    _emit(args, rep, "\n".join(lines))
    return 0


def cmd_fetch_data(args):
    from bigcats.lesson.fetch import fetch, read_manifest

    if args.synthetic:
        from bigcats.lesson.synthetic import make_synthetic_dataset, synthetic_banner

        # by default beside data/raw, never in it; a --dest given is where it goes
        out = make_synthetic_dataset(
            Path(args.dest) if args.dest != DEFAULT_DATA else Path(args.dest).parent / "synthetic"
        )
        print(synthetic_banner(out), file=sys.stderr)
        _emit(args, {"synthetic": True, "dest": str(out)}, f"SYNTHETIC images written to {out}")
        return 0
    pinned = read_manifest() if args.source == DEFAULT_URL and not args.sha256 else None
    rep = fetch(args.source, args.dest, sha256=args.sha256, manifest=pinned)
    _emit(
        args,
        rep,
        f"{rep['added']} photos added to {rep['dest']} ({rep['skipped_existing']} already there): "
        f"{rep['per_class']}. Next: python -m bigcats clean {rep['dest']}",
    )
    return 0


def cmd_train(args):
    from bigcats.lesson.data import resolve_data_dir
    from bigcats.lesson.distributed import train_multiworker
    from bigcats.lesson.train import check_model_path, check_settings, train

    # every argument checked before any work (a data folder made, a model built)
    check_settings(args.epochs, args.image_size, args.batch_size, args.learning_rate)
    check_model_path(args.model, overwrite=args.overwrite)
    data_dir, _ = resolve_data_dir(args.data) if args.data == DEFAULT_DATA else (Path(args.data), None)
    trainer = train_multiworker if args.multi_worker else train
    placement = {} if args.multi_worker else {"augment_on": args.augment_on}  # several machines: in the pipeline
    _, record = trainer(
        data_dir,
        args.model,
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        overwrite=args.overwrite,
        restart=args.restart,
        **placement,
    )
    if record is None:
        print("worker finished; the chief (index 0) saved the model")
        return 0
    val = record["history"].get("val_accuracy", [record.get("val_accuracy")])[-1]
    print(
        f"saved {args.model} after {record['epochs_run']} epochs in {record['train_seconds']:.1f}s"
        + (f"; final validation accuracy {val:.3f}" if val is not None else "")
    )
    sizes = {split: sum(counts.values()) for split, counts in record["split_sizes"].items()}
    per_class = ", ".join(f"{name} {n}" for name, n in record["split_sizes"]["train"].items())
    print(
        f"photos: {sizes['train']} trained on ({per_class}), {sizes['val']} for validation, "
        f"{sizes['test']} held out for `evaluate`"
        + ("; too few photos to validate on: add more" if not sizes["val"] else "")
    )
    return 0


def cmd_evaluate(args):
    from bigcats.lesson.evaluate import evaluate

    result, _, _ = evaluate(args.model, args.data, args.split, mirror=not args.one_look)
    print(
        f"scored the {result['split']} split of {args.data}: {result['n']} photos ({result['split_reason']})",
        file=sys.stderr,
    )
    text = (
        f"{result['split']} split of {args.data}: n={result['n']} accuracy={result['accuracy']:.3f} "
        f"precision={result['precision']:.3f} recall={result['recall']:.3f} f1={result['f1']:.3f}\n"
        f"confusion matrix (rows true, columns predicted; {', '.join(result['class_names'])}): "
        f"{result['confusion_matrix']}"
    )
    _emit(args, result, text)
    return 0


def cmd_predict(args):
    from bigcats.lesson.evaluate import describe, load_trained_model, predict_files

    model, record = load_trained_model(args.model)
    results = predict_files(model, record, args.images, mirror=not args.one_look)
    if not results:
        print(f"No photos found in {', '.join(map(str, args.images))} (JPEG, PNG, GIF, BMP or WebP)", file=sys.stderr)
    for r in results:
        if args.json:
            _emit(args, r)
        else:
            print(f"{r['file']}: {describe(r)}")
    return 1 if any("error" in r for r in results) or not results else 0


def chart_path(given):
    """Where the chart really goes: a folder gets benchmark.png inside it, a bare name gets .png."""
    chart = Path(given)
    if chart.is_dir():
        return chart / "benchmark.png"
    return chart if chart.suffix else chart.with_suffix(".png")


def cmd_benchmark(args):
    from bigcats.benchmark.measure import run_benchmark
    from bigcats.lesson.plots import plot_bars

    if args.data is not None and not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder (leave --data out to use {DEFAULT_DATA})")
    chart = chart_path(args.chart)
    result = run_benchmark(
        args.data, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats,
        large_photos=args.large_photos,
    )  # fmt: skip
    names = [d["name"].split("device:")[-1] for d in result["devices"]]
    fig = plot_bars(
        names,
        [d["images_per_second"] for d in result["devices"]],
        "training images / second",
        "Training speed per device (on random pixels)",
    )
    chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(chart, dpi=100)
    lines = [
        f"{d['name']}: {d['images_per_second']:.1f} images/s (warm-up {d['warmup_seconds']:.1f}s)"
        for d in result["devices"]
    ]
    speedup = result["gpu_speedup"]
    lines.append(f"GPU speed-up: {speedup:.1f}x" if speedup else "GPU speed-up: n/a")
    if result["pipeline"]:
        p = result["pipeline"]
        first = p["first_pass"]
        lines += [
            f"input pipeline over {p['epochs']} epochs of {p['images']} files: naive loop "
            f"{p['naive_images_per_second']:.0f} images/s, tf.data {p['tfdata_images_per_second']:.0f} "
            f"images/s ({p['ratio']:.1f}x)",
            f"first pass (decoding): cv2 {first['cv2_images_per_second']:.0f} images/s, tf.data "
            f"{first['tfdata_images_per_second']:.0f} images/s",
            f"augmented as training reads them: a batch at a time {p['augmented_images_per_second']:.0f} images/s; "
            f"photo by photo read the same way {p['per_photo_augmented_images_per_second']:.0f} "
            f"({p['augmented_ratio']:.1f}x), read as model.fit read it before {p['before_augmented_images_per_second']:.0f} "
            f"({p['augmented_ratio_to_before']:.1f}x), Keras' preprocessing layers {p['keras_layers_images_per_second']:.0f} "
            f"({p['augmented_ratio_to_keras_layers']:.1f}x)",
            f"model.fit, input included: {p['fit_images_per_second']:.0f} images/s "
            f"(augmentation in the {p['augmentation']})",
        ]
        if "large_jpegs" in p:
            large = p["large_jpegs"]
            lines.append(
                f"{large['images']} JPEGs at {large['side']} px, first pass: cv2 {large['cv2_images_per_second']:.0f} "
                f"images/s, tf.data {large['tfdata_images_per_second']:.0f} (decoded whole: "
                f"{large['tfdata_whole_decode_images_per_second']:.0f})"
            )
        lines.append(p["pace"])
    lines += result["notes"] + [f"chart: {chart}"]
    if args.recipes:
        result["recipes"] = _compare_recipes(args)
        lines += _recipe_lines(result["recipes"])
    _emit(args, result, "\n".join(lines))
    return 0


def _compare_recipes(args):
    import tempfile

    from bigcats.benchmark.measure import compare_recipes
    from bigcats.lesson.data import resolve_data_dir

    data_dir, _ = resolve_data_dir(args.data or DEFAULT_DATA)
    with tempfile.TemporaryDirectory() as work:
        return compare_recipes(data_dir, work, image_size=args.image_size, rounds=args.rounds)


def _recipe_lines(comparison):
    lines = [
        "",
        f"{'recipe':<22}{'size':>6}{'epochs':>8}{'train s':>9}{'test acc':>10}{'stress acc':>12}{'farther acc':>13}",
    ]
    for r in comparison["recipes"]:
        lines.append(
            f"{r['recipe']:<22}{r['image_size']:>6}{r['epochs_run']:>8}{r['train_seconds']:>9.1f}"
            f"{r['test_accuracy']:>10.3f}{r['stress_accuracy']:>12.3f}{r['farther_accuracy']:>13.3f}"
        )
    lines.append(
        f"training time, tutorial / original: {comparison['time_ratio']:.2f} "
        f"(stress set: {comparison['stress_images']} transformed test photos; farther away: "
        f"{comparison['farther_images']})"
    )
    if comparison["rounds"] > 1:
        lines[-1] += f", the median of {comparison['rounds']} interleaved rounds"
        for r in comparison["recipes"]:
            lines.append(f"  {r['recipe']} each round: " + ", ".join(f"{t:.1f} s" for t in r["train_seconds_each"]))
        lines.append("  ratio each round: " + ", ".join(f"{x:.2f}" for x in comparison["time_ratios"]))
    return lines


def cmd_tutorial(args):
    from bigcats.environment.tutorial import run_all
    from bigcats.lesson.data import has_photos

    if not args.synthetic and not has_photos(DEFAULT_DATA):
        from bigcats.lesson.fetch import fetch_for_tutorial

        print(fetch_for_tutorial(DEFAULT_DATA)[1])
    for name, seconds in run_all(args.notebooks, args.output, timeout=args.timeout):
        print(f"{name}: {seconds:.0f}s")
    print(f"Executed notebooks, with their plots: {args.output or Path(args.notebooks) / 'executed'}")
    return 0


def cmd_hosted_setup(args):
    from bigcats.environment.hosted import hosted_notebook, install_lacking
    from bigcats.environment.machine import nvidia_gpu
    from bigcats.lesson.data import has_photos

    installed, kept = install_lacking()
    print(f"{hosted_notebook() or 'This Python'}: installed " + (", ".join(installed) or "nothing (it has them all)"))
    for line in kept:
        print(f"kept the notebook's own {line}")
    if not has_photos(DEFAULT_DATA):
        from bigcats.lesson.fetch import fetch_for_tutorial

        print(fetch_for_tutorial(DEFAULT_DATA)[1])
    gpu = nvidia_gpu()
    print(f"GPU: {gpu[0]}" if gpu else "No GPU here: in Colab, Runtime > Change runtime type > T4 GPU, then run again.")
    return 0


def _one_look_option(parser):
    parser.add_argument(
        "--one-look",
        action="store_true",
        help="one prediction per photo, half the work (default: the average with its mirror image)",
    )


def _add_doctor(commands):
    p = commands.add_parser("doctor", help="report Python, TensorFlow and GPU status, with fixes")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--explain",
        metavar="FILE",
        help="explain an error or log you got (a file, or - for standard input): its cause and the fix",
    )
    p.set_defaults(func=cmd_doctor)


def _add_clean(commands):
    p = commands.add_parser("clean", help="check every image; move unusable ones to a quarantine folder")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("--quarantine", metavar="DIR", help="where bad files go (default: quarantine/ beside DATA_DIR)")
    p.add_argument("--report", metavar="FILE", help="also write the JSON report here")
    p.add_argument("--dry-run", action="store_true", help="only say what would move")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_clean)


def _add_fetch_data(commands):
    p = commands.add_parser(
        "fetch-data", help="download the real lion and tiger photos (or copy them from an archive or folder)"
    )
    p.add_argument(
        "--source",
        default=DEFAULT_URL,
        metavar="URL|ARCHIVE|FOLDER",
        help="default: the CC0 '10 Big Cats of the Wild' set (Kaggle), verified against pinned hashes",
    )
    p.add_argument("--dest", default=DEFAULT_DATA, help=f"default {DEFAULT_DATA}")
    p.add_argument("--sha256", default=None, help="expected SHA-256 of the archive")
    p.add_argument("--synthetic", action="store_true", help="offline: make the small synthetic set instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fetch_data)


def _add_train(commands):
    p = commands.add_parser("train", help="train the CNN on DATA_DIR/<class>/ and save a .keras model")
    p.add_argument(
        "--data",
        default=DEFAULT_DATA,
        metavar="DATA_DIR",
        help=f"default {DEFAULT_DATA} (a synthetic set is made if it is empty)",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="OUT.keras", help="where to save it (default %(default)s)")
    p.add_argument(
        "--epochs", type=int, default=config.EPOCHS, help="passes over the training photos (default %(default)s)"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=config.IMAGE_SIZE,
        help="photos are resized to this many pixels square (default %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=config.BATCH_SIZE,
        help="photos per step; with several GPUs, per GPU (default %(default)s)",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=config.LEARNING_RATE,
        help=f"Adam's starting rate, decayed by a cosine (default {config.LEARNING_RATE})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=config.SEED,
        help="fixes the initial weights and the augmentation (default %(default)s)",
    )
    p.add_argument(
        "--multi-worker",
        action="store_true",
        help="train across the machines listed in TF_CONFIG (MultiWorkerMirroredStrategy)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing model at --model (whole, once training has finished; without it, training refuses)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start afresh even if an interrupted run of the same training could be resumed",
    )
    p.add_argument(
        "--augment-on",
        choices=["auto", "pipeline", "step"],
        default="auto",
        help="where the augmentation runs: in the tf.data pipeline, or inside the training step (default auto: "
        "in the step with a GPU or a CPU of 4 cores or fewer, else in the pipeline)",
    )
    p.set_defaults(func=cmd_train)


def _add_evaluate(commands):
    p = commands.add_parser("evaluate", help="score a saved model on a data folder")
    p.add_argument("--model", default=DEFAULT_MODEL, help="default %(default)s")
    p.add_argument("--data", default=DEFAULT_DATA, metavar="DATA_DIR")
    p.add_argument(
        "--split",
        default=None,
        choices=["test", "val", "train", "all"],
        help="which part of DATA_DIR (default: 'test', the photos training never saw, for the folder the model "
        "was trained on; 'all' for any other folder)",
    )
    p.add_argument("--json", action="store_true")
    _one_look_option(p)
    p.set_defaults(func=cmd_evaluate)


def _add_predict(commands):
    p = commands.add_parser("predict", help="classify photos (files or folders)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="default %(default)s")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photo files or folders of them")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _one_look_option(p)
    p.set_defaults(func=cmd_predict)


def _add_benchmark(commands):
    p = commands.add_parser("benchmark", help="training speed per device and input-pipeline speed")
    p.add_argument(
        "--data", default=None, metavar="DATA_DIR", help=f"photos for the pipeline test (default {DEFAULT_DATA})"
    )
    p.add_argument("--image-size", type=int, default=config.IMAGE_SIZE)
    p.add_argument("--batch-size", type=int, default=config.BATCH_SIZE)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chart", default="reports/benchmark.png")
    p.add_argument(
        "--large-photos",
        type=int,
        default=24,
        help="how many photos to scale up to 4000 px for the decoding figures (0: none; default %(default)s)",
    )
    p.add_argument(
        "--recipes",
        action="store_true",
        help="also train the 2022 recipe and the tutorial's model side by side (minutes)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --recipes: train both this many times, interleaved; report the median ratio",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_benchmark)


def _add_tutorial(commands):
    p = commands.add_parser("tutorial", help="run every notebook headless, in order")
    p.add_argument("--notebooks", default="notebooks")
    p.add_argument("--output", default=None, help="where executed copies go (default notebooks/executed)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    p.add_argument(
        "--synthetic",
        action="store_true",
        help=f"never download: with no photos in {DEFAULT_DATA} the notebooks use the synthetic set "
        f"(default: the real photos are fetched first, from ${{BIGCATS_PHOTOS_URL}} if set)",
    )
    p.set_defaults(func=cmd_tutorial)


def _add_hosted_setup(commands):
    p = commands.add_parser(
        "hosted-setup",
        help="in Colab or Kaggle: install what the hosted notebook lacks (never its TensorFlow or CUDA), fetch the photos",
    )
    p.set_defaults(func=cmd_hosted_setup)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bigcats", description="Lions vs tigers on the GPU: the tutorial's tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_doctor,
        _add_clean,
        _add_fetch_data,
        _add_train,
        _add_evaluate,
        _add_predict,
        _add_benchmark,
        _add_tutorial,
        _add_hosted_setup,
    ):
        add(commands)
    return parser


def check_keras_backend():
    """Keras runs on TensorFlow, PyTorch or JAX here (`bigcats.environment.backends`); a KERAS_BACKEND naming
    another framework, or one not installed, would fail far from the cause."""
    import importlib.util

    from bigcats.environment.machine import BACKENDS

    backend = os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() or "tensorflow"
    if backend not in BACKENDS:
        raise ValueError(
            f"KERAS_BACKEND={backend} is set, but bigcats runs Keras on {', '.join(BACKENDS)}. Set one of "
            "those, or `unset KERAS_BACKEND` for the one setup chose."
        )
    if importlib.util.find_spec(backend) is None:
        raise ValueError(
            f"KERAS_BACKEND={backend}, but {backend} is not installed in this environment. Run "
            f"./setup_env.sh --backend {backend} (Windows: setup_env.bat --backend {backend}), or `unset KERAS_BACKEND`."
        )


def _words(error):
    """An error as one plain sentence: an OSError without its '[Errno 28]' prefix."""
    if isinstance(error, OSError) and error.errno and error.strerror:
        return error.strerror + (f": {error.filename}" if error.filename else "")
    return str(error)


def main(argv=None):
    """`python -m bigcats COMMAND ...`: the command line, run with `argv` (default: this process's
    arguments); returns the exit status. A notebook calls it as `main(["hosted-setup"])`."""
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a file name in no encoding is printed, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if argv is None:  # from a command line: TensorFlow's harmless start-up lines stay out of the terminal
        from bigcats.environment.startup_log import hide_harmless_lines

        hide_harmless_lines()
    args.stdout = sys.stdout
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TF's warnings and errors, drop its info lines
    quiet = contextlib.redirect_stdout(sys.stderr) if getattr(args, "json", False) else contextlib.nullcontext()
    try:
        if args.func is not cmd_doctor:
            check_keras_backend()
        with quiet:
            return args.func(args)
    except USER_ERRORS as error:
        print(f"error: {_words(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line, no traceback, the shell's status for it
        print(f"interrupted: {str(interrupt) or 'stopped by Ctrl-C'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
