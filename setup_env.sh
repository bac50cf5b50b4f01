#!/usr/bin/env bash
# Set up (or update) the bigcats environment on Linux, WSL2 or macOS. Safe to re-run.
#
#   ./setup_env.sh            virtual environment in .venv, packages, the "Python (bigcats)" kernel
#   ./setup_env.sh --cpu      never install the CUDA libraries, even where an NVIDIA driver works
#   ./setup_env.sh --metal    on Apple silicon, add tensorflow-metal (the Apple GPU plugin)
#   ./setup_env.sh --backend torch|jax|tensorflow
#                             Keras' backend, instead of the one chosen for this machine (TensorFlow,
#                             or PyTorch where only it reaches the GPU: Blackwell, AMD Radeon and
#                             Instinct through ROCm, Intel Arc through XPU, Apple silicon)
#
# Environment: PYTHON=/path/to/python3.x picks the interpreter; BIGCATS_VENV picks the folder.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${BIGCATS_VENV:-.venv}"
WANT_CPU=0
WANT_METAL=0
BACKEND=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) WANT_CPU=1 ;;
    --metal) WANT_METAL=1 ;;
    --backend) BACKEND="${2:-}"; shift ;;
    --backend=*) BACKEND="${1#--backend=}" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see ./setup_env.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$BACKEND" in
  ""|tensorflow|torch|jax) ;;
  *) echo "--backend takes tensorflow, torch or jax, not '$BACKEND'" >&2; exit 2 ;;
esac

say() { printf '\n==> %s\n' "$*"; }

supported() {  # the pinned packages install on Python 3.11-3.13 (bigcats/environment/setup_plan.py says why)
  "$1" -m bigcats.environment.setup_plan --check-python 2>/dev/null
}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3.13 python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 && supported "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if [ -x "$VENV/bin/python" ] && supported "$VENV/bin/python"; then
  say "Reusing the environment in $VENV ($("$VENV/bin/python" --version))"
else
  if [ -e "$VENV" ]; then
    echo "$VENV exists but does not hold a working Python 3.11-3.13 (an older Python, a broken copy, or one" >&2
    echo "made on Windows); move it aside (mv $VENV $VENV.old) and re-run." >&2
    exit 1
  fi
  PY="$(find_python)" || {
    echo "No Python 3.11-3.13 found: this project's pinned packages (TensorFlow 2.21, Keras 3.15) need one." >&2
    # any python3 can run the check and say what to do on this system (Ubuntu 22.04 has only 3.10)
    command -v python3 >/dev/null 2>&1 && python3 -m bigcats.environment.setup_plan --check-python
    echo "Install Python 3.12 (python.org, your package manager, pyenv or uv), or set PYTHON=/path/to/python3.12." >&2
    exit 1
  }
  "$PY" -m bigcats.environment.setup_plan --preflight || exit 1
  say "Creating the environment in $VENV with $PY ($("$PY" --version))"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

say "Checking this machine for a GPU route"
# bigcats/environment/setup_plan.py decides (tested for Linux, WSL2, macOS and Windows); it prints the extra
# packages on stdout and its advice on stderr.
PLAN_FLAGS=()
[ "$WANT_CPU" = 1 ] && PLAN_FLAGS+=(--cpu)
[ "$WANT_METAL" = 1 ] && PLAN_FLAGS+=(--metal)
[ -n "$BACKEND" ] && PLAN_FLAGS+=(--backend "$BACKEND")
# (the ${a[@]+...} form: macOS's bash 3.2 calls an empty array unbound under set -u)
EXTRA="$("$VENV/bin/python" -m bigcats.environment.setup_plan ${PLAN_FLAGS[@]+"${PLAN_FLAGS[@]}"})" || exit 1

say "Installing the pinned packages (requirements.txt)"
"${PIP[@]}" install -r requirements.txt

if [ -n "$EXTRA" ]; then
  say "Installing $EXTRA"
  # shellcheck disable=SC2086  # EXTRA is a space-separated list of requirements
  "${PIP[@]}" install $EXTRA
  # pip takes an installed 2.14.1+cpu for torch==2.14.1: check the build is the plan's
  "$VENV/bin/python" -m bigcats.environment.setup_plan --check-build ${PLAN_FLAGS[@]+"${PLAN_FLAGS[@]}"} || exit 1
fi

say "Installing the bigcats package (editable: your changes to bigcats/ take effect at once)"
"${PIP[@]}" install --no-deps -e .

say "Registering the Jupyter kernel 'Python (bigcats)' inside $VENV"
# --sys-prefix: the kernel belongs to this environment, so another checkout's setup cannot re-point
# it; JupyterLab started from this environment ($VENV/bin/jupyter lab) finds it first.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name bigcats --display-name "Python (bigcats)"
"$VENV/bin/python" -m bigcats.environment.setup_plan --lab-settings
# the backend where the command line and the kernel read it (KERAS_BACKEND set by hand still wins)
"$VENV/bin/python" -m bigcats.environment.setup_plan --save-backend ${PLAN_FLAGS[@]+"${PLAN_FLAGS[@]}"}
if "$VENV/bin/jupyter" kernelspec list 2>/dev/null | grep -q "^ *bigcats .*\.local/share/jupyter"; then
  echo "note: an older user-wide 'bigcats' kernel exists (from an earlier setup, maybe of another copy)." >&2
  echo "      JupyterLab started from $VENV uses this environment's own; remove the old one with:" >&2
  echo "      jupyter kernelspec remove bigcats   (run with the Jupyter outside $VENV)" >&2
fi
if git rev-parse --git-dir >/dev/null 2>&1; then
  say "Keeping notebook outputs out of git (nbstripout as this clone's git filter)"
  "$VENV/bin/nbstripout" --install
  git config filter.nbstripout.extrakeys "metadata.language_info.version"
fi

say "Done. Next:"
echo "    $VENV/bin/python -m bigcats doctor      # which backend trains, what it sees, with fixes"
echo "    $VENV/bin/jupyter lab notebooks/          # the tutorial; pick the 'Python (bigcats)' kernel"
