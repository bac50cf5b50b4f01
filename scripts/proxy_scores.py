"""The development proxy for photos from elsewhere (docs/model-selection.md#photos-from-elsewhere):
train with `python -m bigcats train` for each seed in a fresh process, then score each model, with
two looks, on the test split and on copies of the validation and test photos as `make_stress_set`
makes them (stress: 3 copies, farther away: 2, elsewhere: 3).

    .venv/bin/python scripts/proxy_scores.py --data DEV_PHOTOS --out proxy --name today
    .venv/bin/python scripts/proxy_scores.py --data DEV_PHOTOS --out proxy --name fix \
        --against today [--train-args "--epochs 30"]

Run it from the checkout whose code is to be scored. Each seed's scores land as one line of
OUT/NAME/scores.jsonl (a run that stops resumes after the last seed written); the summary gives
the mean, range and standard deviation over seeds, and with --against the seed-by-seed
difference with its standard error. The copies are made once, in OUT/sets, from the photos'
split, so every run is scored on the same images. Takes a few minutes a seed on a 2-core CPU.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

CHECKS = {"test": None, "stress": 3, "farther": 2, "elsewhere": 3}  # check: copies of each held-out photo
SEEDS = (42, 1, 2, 3, 4, 5)


def make_sets(data_dir, out):
    from bigcats.lesson.data import class_names, split_images
    from bigcats.lesson.robustness import make_stress_set

    splits = split_images(data_dir)
    held_out = splits["val"] + splits["test"]
    for kind, copies in CHECKS.items():
        folder = out / "sets" / kind
        if copies and not folder.exists():
            make_stress_set(held_out, class_names(data_dir), folder, copies=copies, seed=0, kind=kind)


def train(data_dir, model_path, seed, extra):
    command = [sys.executable, "-m", "bigcats", "train", "--data", str(data_dir), "--model", str(model_path)]
    command += ["--seed", str(seed), "--overwrite", "--restart", *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def score(model_path, data_dir, out):
    from bigcats.lesson.evaluate import evaluate

    scores = {"test": evaluate(model_path, data_dir, split="test")[0]["accuracy"]}
    for kind, copies in CHECKS.items():
        if copies:
            scores[kind] = evaluate(model_path, out / "sets" / kind, split="all")[0]["accuracy"]
    return scores


def read_scores(path):
    return {row["seed"]: row for row in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def summary(rows, against=None):
    lines = []
    for check in CHECKS:
        values = np.array([row[check] for row in rows.values()])
        line = f"{check:>10}: {values.mean():.3f} ({values.min():.3f}-{values.max():.3f}, sd {values.std(ddof=1):.3f})"
        paired = [seed for seed in rows if against and seed in against]
        if len(paired) > 1:
            diff = np.array([rows[s][check] - against[s][check] for s in paired])
            line += f"   against: {diff.mean():+.3f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.3f} ({len(diff)} seeds)"
        lines.append(line)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the development photos, <class>/*.jpg")
    parser.add_argument("--out", type=Path, default=Path("proxy"))
    parser.add_argument("--name", required=True, help="what is scored (a folder of OUT)")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--train-args", default="", help="more arguments for `bigcats train`")
    parser.add_argument("--against", help="another NAME already scored: the seed-by-seed difference")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    make_sets(args.data, args.out)
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    done = read_scores(folder / "scores.jsonl")
    for seed in args.seeds:
        if seed in done:
            continue
        model_path = folder / f"seed{seed}.keras"
        train(args.data, model_path, seed, shlex.split(args.train_args))
        row = {"seed": seed, **score(model_path, args.data, args.out)}
        with open(folder / "scores.jsonl", "a") as file:
            file.write(json.dumps(row) + "\n")
        done[seed] = row
        print(json.dumps(row), flush=True)
    against = read_scores(args.out / args.against / "scores.jsonl") if args.against else None
    print(f"{args.name}, {len(done)} seeds:\n{summary(done, against)}")


if __name__ == "__main__":
    main()
