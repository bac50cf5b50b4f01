"""What setup_env installs and says, on machines we do not have (simulated)."""

from bigcats.environment.setup_plan import Machine, plan, tensorflow_pin
from conftest import ROOT


def said(p):
    return "\n".join(p.messages)


def test_linux_with_nvidia_driver_gets_the_cuda_wheels_pinned_to_requirements():
    p = plan(Machine("Linux", nvidia_smi_ok=True), tensorflow_pin())
    assert p.packages == ["tensorflow[and-cuda]==2.21.0"] and p.gpu == "cuda"


def test_linux_without_driver_and_forced_cpu_get_plain_tensorflow():
    assert plan(Machine("Linux"), "2.21.0").packages == []
    assert "CPU" in said(plan(Machine("Linux"), "2.21.0"))
    forced = plan(Machine("Linux", nvidia_smi_ok=True), "2.21.0", cpu_only=True)
    assert forced.packages == [] and "--cpu" in said(forced)


def test_wsl2_with_and_without_gpu_passthrough():
    assert plan(Machine("Linux", wsl=True, nvidia_smi_ok=True), "2.21.0").gpu == "cuda"
    p = plan(Machine("Linux", wsl=True), "2.21.0")
    assert p.packages == [] and "Windows side" in said(p) and "wsl --update" in said(p)


def test_native_windows_with_gpu_is_told_the_truth_and_the_wsl2_commands():
    p = plan(Machine("Windows", "AMD64", nvidia_smi_ok=True, windows_build=22631), "2.21.0")
    text = said(p)
    assert p.packages == [] and p.gpu == "cpu"
    assert "no GPU support on native Windows" in text and "wsl --install -d Ubuntu" in text
    assert "./setup_env.sh" in text and "tensorflow<2.11" in text and "untested" in text


def test_old_windows_build_is_told_to_update_first_and_installed_wsl_skips_a_step():
    text = said(plan(Machine("Windows", nvidia_smi_ok=True, windows_build=18363, wsl_installed=True), "2.21.0"))
    assert "build 18363" in text and "19044" in text and "skip to 3" in text


def test_windows_without_gpu():
    p = plan(Machine("Windows"), "2.21.0")
    assert p.packages == [] and "CPU" in said(p)


def test_macos():
    metal = plan(Machine("Darwin", "arm64"), "2.21.0", metal=True, python_version=(3, 12))
    assert (
        metal.packages == ["tensorflow-metal"]
        and "ends at TensorFlow 2.18" in said(metal)
        and "uninstall" in said(metal)
    )
    refused = plan(Machine("Darwin", "arm64"), "2.21.0", metal=True, python_version=(3, 13))
    assert refused.packages == [] and not refused.supported and "no wheel for Python 3.13" in said(refused)
    plain = plan(Machine("Darwin", "arm64"), "2.21.0")  # the Apple GPU through PyTorch (tests/test_backends.py)
    assert plain.backend == "torch" and "--metal" in said(plain)
    intel = plan(Machine("Darwin", "x86_64"), "2.21.0", metal=True)
    assert intel.packages == [] and not intel.supported and "no wheel for Intel Macs" in said(intel)


def test_both_setup_scripts_use_the_plan():
    assert "-m bigcats.environment.setup_plan" in (ROOT / "setup_env.sh").read_text()
    bat = (ROOT / "setup_env.bat").read_bytes()
    assert b"-m bigcats.environment.setup_plan" in bat and b"\r\n" in bat and b"tensorflow-gpu" not in bat


def test_command_prints_packages_on_stdout_and_refuses_an_intel_mac(monkeypatch, capsys):
    from bigcats.environment import setup_plan

    monkeypatch.setattr(setup_plan, "this_machine", lambda: Machine("Linux", nvidia_smi_ok=True))
    assert setup_plan.main([]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "tensorflow[and-cuda]==2.21.0" and "NVIDIA driver found" in err
    monkeypatch.setattr(setup_plan, "this_machine", lambda: Machine("Darwin", "x86_64"))
    assert setup_plan.main([]) == 3
    assert "Intel Mac" in capsys.readouterr().err


# --- issue: setup that works on the machines learners actually have ----------------------------

from bigcats.environment.setup_plan import Interpreter, preflight, python_problems  # noqa: E402


def severities(found):
    return {(severity, message.split(":")[0].split(" (")[0][:40]) for severity, message, _ in found}


def windows(**facts):
    defaults = dict(version=(3, 12, 7), system="Windows", machine="AMD64", bits=64, project_dir=r"C:\src\bigcats",
                    long_paths=False, vc_runtime=(14, 42), avx=True)  # fmt: skip
    return Interpreter(**{**defaults, **facts})


def test_python_3_10_is_refused_with_the_route_for_ubuntu_22_04():
    ((message, fix),) = python_problems(Interpreter((3, 10, 12), os_release={"ID": "ubuntu", "VERSION_ID": "22.04"}))
    assert "3.10 cannot install" in message and "deadsnakes" in fix and "PYTHON=python3.12 ./setup_env.sh" in fix
    assert python_problems(Interpreter((3, 11, 9))) == [] and python_problems(Interpreter((3, 13, 1))) == []
    assert python_problems(Interpreter((3, 14, 0)))


def test_windows_python_must_be_64_bit_x86_and_a_new_window_is_needed_after_installing():
    assert preflight(windows()) == []
    for facts in (dict(bits=32, machine="x86"), dict(machine="ARM64")):
        ((severity, message, fix),) = preflight(windows(**facts))
        assert severity == "error" and "64-bit x86 only" in message and "new terminal" in fix
    ((_, _, fix),) = preflight(windows(version=(3, 10, 11)))
    assert "NEW terminal" in fix and "py install 3.12" in fix


def test_windows_long_paths_are_checked_against_the_deepest_tensorflow_file():
    assert preflight(windows(project_dir="C:\\" + "x" * 68)) == []  # 71 characters: fits
    ((severity, message, fix),) = preflight(windows(project_dir="C:\\" + "x" * 69))
    assert severity == "error" and "260-character" in message and "LongPathsEnabled" in fix
    assert preflight(windows(project_dir="C:\\" + "x" * 150, long_paths=True)) == []


def test_windows_visual_cpp_runtime_avx_unc_and_non_ascii_paths():
    ((_, message, fix),) = preflight(windows(vc_runtime=None))
    assert "not installed" in message and "Microsoft.VCRedist.2015+.x64" in fix
    ((_, message, _),) = preflight(windows(vc_runtime=(14, 36)))
    assert "version 14.36" in message and "14.40" in message
    ((_, message, _),) = preflight(windows(avx=False))
    assert "no AVX" in message
    ((_, message, fix),) = preflight(windows(project_dir=r"\\wsl.localhost\Ubuntu\home\me\bigcats"))
    assert "network or WSL path" in message and "./setup_env.sh" in fix
    ((severity, message, _),) = preflight(windows(project_dir=r"C:\Users\Zoë\bigcats"))
    assert severity == "warning" and "non-ASCII" in message


def test_wsl_status_is_not_proof_of_a_distribution(monkeypatch):
    from bigcats.environment import setup_plan

    class Done:
        def __init__(self, stdout):
            self.stdout = stdout

    monkeypatch.setattr(setup_plan.shutil, "which", lambda name: "wsl.exe")
    monkeypatch.setattr(setup_plan.subprocess, "run", lambda *a, **k: Done("Ubuntu\r\n".encode("utf-16-le")))
    assert setup_plan._wsl_distributions() == ["Ubuntu"]
    monkeypatch.setattr(setup_plan.subprocess, "run", lambda *a, **k: Done(b""))
    assert setup_plan._wsl_distributions() == []


def test_the_scripts_check_before_the_install_and_the_batch_file_avoids_cmd_pitfalls():
    shell = (ROOT / "setup_env.sh").read_text()
    assert shell.index("--preflight") < shell.index('"${PIP[@]}" install -r requirements.txt')
    assert "python3.10" not in shell
    bat = (ROOT / "setup_env.bat").read_bytes().decode()
    commands = "\n".join(line for line in bat.splitlines() if not line.lower().startswith("rem"))
    assert "EnableDelayedExpansion" not in commands and "&&" not in commands and "||" not in commands
    assert bat.index("--preflight") < bat.index("-r requirements.txt")
    assert bat.index("-m bigcats.environment.setup_plan %PLAN_FLAGS% >") < bat.index(
        "-r requirements.txt"
    )  # the plan before the download
    assert "pause" in bat and "cmdcmdline" in bat and "import tensorflow" in bat and "ensurepip" in bat


def test_setup_env_bat_under_wine_reaches_no_python_and_builds_nothing(tmp_path):
    import os
    import shutil
    import subprocess

    import pytest

    wine = shutil.which("wine")
    if not wine:
        pytest.skip("wine is not installed (apt-get install wine wine64): setup_env.bat not run")
    project = tmp_path / "lions & tigers"  # a folder named with "&", which cmd.exe reads as "and then"
    project.mkdir()
    shutil.copy(ROOT / "setup_env.bat", project)
    shutil.copytree(ROOT / "bigcats", project / "bigcats")
    env = {**os.environ, "WINEDEBUG": "-all", "WINEPREFIX": str(tmp_path / "wineprefix"), "BIGCATS_NO_PAUSE": "1"}
    done = subprocess.run([wine, "cmd", "/c", "setup_env.bat"], cwd=project, env=env, capture_output=True, timeout=300)
    out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    assert done.returncode == 1, out
    assert "No 64-bit Python 3.11-3.13 found" in out and "NEW terminal" in out
    assert "Syntax error" not in out and "tigers" not in out.replace(str(project), "")  # no "tigers" run as a command
    assert "Press any key" not in out and not (project / ".venv").exists()


def test_the_readme_and_notebook_01_state_the_facts_setup_acts_on():
    from pathlib import Path

    from bigcats.environment.machine import TENSORFLOW_CUDA_WHEELS, TENSORFLOW_DRIVER_MIN, TORCH_DRIVER_MIN
    from bigcats.environment.setup_plan import platform_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    cuda = f"CUDA {TENSORFLOW_CUDA_WHEELS['cuda']} / cuDNN {TENSORFLOW_CUDA_WHEELS['cudnn']}"
    tf_driver, torch_driver = f"{TENSORFLOW_DRIVER_MIN['Linux'][0]}+", f"driver {TORCH_DRIVER_MIN[0]}+"
    assert cuda in readme and f"driver must be {tf_driver}" in readme and torch_driver in readme
    table = platform_table()  # what notebook 01 shows
    assert cuda in table and f"driver {tf_driver}" in table and torch_driver in table
    assert "macOS, Intel | not supported" in table and table.count("\n") == 11  # header, rule, ten platforms
    for row in ("Maxwell to Volta", "AMD Radeon", "Intel Arc"):  # the README's table has these rows too
        assert row in table and row in readme
