"""What setup_env installs and says, on machines we do not have (simulated)."""

from bigcats.setup_plan import Machine, plan, tensorflow_pin
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
    assert plan(Machine("Darwin", "arm64"), "2.21.0", metal=True).packages == ["tensorflow-metal"]
    plain = plan(Machine("Darwin", "arm64"), "2.21.0")
    assert plain.packages == [] and "--metal" in said(plain)
    intel = plan(Machine("Darwin", "x86_64"), "2.21.0", metal=True)
    assert intel.packages == [] and not intel.supported and "no wheel for Intel Macs" in said(intel)


def test_both_setup_scripts_use_the_plan():
    assert "-m bigcats.setup_plan" in (ROOT / "setup_env.sh").read_text()
    bat = (ROOT / "setup_env.bat").read_bytes()
    assert b"-m bigcats.setup_plan" in bat and b"\r\n" in bat and b"tensorflow-gpu" not in bat


def test_command_prints_packages_on_stdout_and_refuses_an_intel_mac(monkeypatch, capsys):
    from bigcats import setup_plan

    monkeypatch.setattr(setup_plan, "this_machine", lambda: Machine("Linux", nvidia_smi_ok=True))
    assert setup_plan.main([]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "tensorflow[and-cuda]==2.21.0" and "NVIDIA driver found" in err
    monkeypatch.setattr(setup_plan, "this_machine", lambda: Machine("Darwin", "x86_64"))
    assert setup_plan.main([]) == 3
    assert "Intel Mac" in capsys.readouterr().err
