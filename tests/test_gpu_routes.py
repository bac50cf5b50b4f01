"""Every GPU a learner has: setup finds whose GPU it is from what the operating system lists
(recorded here: sysfs, the amdgpu driver's KFD topology, `lspci -nn`, Windows' registry) and
plans the PyTorch build that drives it, pinned with its label and checked after installing."""

import json
import sys
import types

import pytest

from bigcats.environment import machine, setup_plan
from bigcats.environment.machine import gfx_target, linux_adapters, lspci_names, vendor_of, windows_adapters
from bigcats.environment.setup_plan import Machine, main, plan, preferred_adapter, torch_build_problem

INDEX = "https://download.pytorch.org/whl"
# `lspci -nn` on three desktops and a laptop (display controllers only; other lines are skipped)
LSPCI = """\
00:00.0 Host bridge [0600]: Intel Corporation Raptor Lake-S 8+8 - Host Bridge/DRAM Registers [8086:a703] (rev 01)
00:02.0 VGA compatible controller [0300]: Intel Corporation Raptor Lake-S GT1 [UHD Graphics 770] [8086:a780] (rev 04)
03:00.0 VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M] [1002:744c] (rev c8)
04:00.0 VGA compatible controller [0300]: Advanced Micro Devices, Inc. [AMD/ATI] Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT] [1002:73df] (rev c1)
05:00.0 VGA compatible controller [0300]: Intel Corporation DG2 [Arc A770] [8086:56a0] (rev 08)
01:00.0 3D controller [0302]: NVIDIA Corporation GA107M [GeForce RTX 3050 Mobile] [10de:25a2] (rev a1)
"""
# /sys/class/kfd/kfd/topology/nodes/N/properties (abridged): node 0 is the CPU
KFD_CPU = "cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\nvendor_id 0\ndevice_id 0\n"
KFD_RX_7900 = "cpu_cores_count 0\nsimd_count 192\ngfx_target_version 110000\nvendor_id 4098\ndevice_id 29772\n"
KFD_RX_6700 = "cpu_cores_count 0\nsimd_count 80\ngfx_target_version 100301\nvendor_id 4098\ndevice_id 29663\n"


def sysfs(tmp_path, devices, kfd_nodes):
    """A /sys/bus/pci/devices and a KFD topology as the kernel lays them out."""
    for address, (pci_class, vendor, device) in devices.items():
        folder = tmp_path / "pci" / address
        folder.mkdir(parents=True)
        (folder / "class").write_text(pci_class + "\n")
        (folder / "vendor").write_text(vendor + "\n")
        (folder / "device").write_text(device + "\n")
    for number, properties in enumerate(kfd_nodes):
        node = tmp_path / "kfd" / str(number)
        node.mkdir(parents=True)
        (node / "properties").write_text(properties)
    return str(tmp_path / "pci"), str(tmp_path / "kfd")


def test_the_amdgpu_drivers_gfx_target_version_names_the_chip():
    assert [gfx_target(v) for v in (110000, 100301, 90010, 90402, 110501, 120001, 0)] == [
        "gfx1100", "gfx1031", "gfx90a", "gfx942", "gfx1151", "gfx1201", ""
    ]  # fmt: skip


def test_linux_adapters_from_sysfs_named_by_lspci_with_the_kfd_gfx_target(tmp_path):
    devices = {
        "0000:00:00.0": ("0x060000", "0x8086", "0xa703"),  # a host bridge: not a display controller
        "0000:00:02.0": ("0x030000", "0x8086", "0xa780"),
        "0000:03:00.0": ("0x030000", "0x1002", "0x744c"),
        "0000:06:00.0": ("0x030000", "0x1a03", "0x2000"),  # a server's ASPEED BMC: no maker we plan for
    }
    pci, kfd = sysfs(tmp_path, devices, [KFD_CPU, KFD_RX_7900])
    found = linux_adapters(pci, kfd, lspci_text=LSPCI)
    assert found == [
        ("intel", "Intel Corporation Raptor Lake-S GT1 [UHD Graphics 770]", ""),
        ("amd", "Advanced Micro Devices, Inc. [AMD/ATI] Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]", "gfx1100"),
    ]  # fmt: skip
    assert preferred_adapter(found)[2] == "gfx1100"  # the Radeon, not the processor's graphics
    unnamed = linux_adapters(pci, kfd, lspci_text="")  # no pciutils installed: vendors still known
    assert [(vendor, name) for vendor, name, _ in unnamed] == [("intel", ""), ("amd", "")]
    assert len(lspci_names(LSPCI)) == 5  # the display controllers, not the host bridge


def test_an_intel_arc_card_is_preferred_to_a_radeon_the_rocm_build_lacks(tmp_path):
    devices = {"0000:04:00.0": ("0x030000", "0x1002", "0x73df"), "0000:05:00.0": ("0x030000", "0x8086", "0x56a0")}
    pci, kfd = sysfs(tmp_path, devices, [KFD_CPU, KFD_RX_6700])
    found = linux_adapters(pci, kfd, lspci_text=LSPCI)
    assert [target for _, _, target in found] == ["gfx1031", ""]
    assert preferred_adapter(found) == ("intel", "Intel Corporation DG2 [Arc A770]", "")
    assert preferred_adapter([]) == ()


def test_windows_adapters_come_from_the_display_class_in_the_registry(monkeypatch):
    adapters = {
        "0000": {"DriverDesc": "AMD Radeon RX 7800 XT", "ProviderName": "Advanced Micro Devices, Inc."},
        "0001": {"DriverDesc": "Intel(R) Arc(TM) Graphics", "ProviderName": "Intel Corporation"},
        "0002": {"DriverDesc": "Microsoft Basic Display Adapter", "ProviderName": "Microsoft"},
        "Properties": {},  # the class key holds this beside the numbered adapters; it has no DriverDesc
    }

    class Key:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def open_key(parent, name):
        return Key(name)

    def query_value(key, value):
        try:
            return adapters[key.name][value], 1
        except KeyError:
            raise OSError("not found") from None

    winreg = types.SimpleNamespace(
        HKEY_LOCAL_MACHINE=0,
        OpenKey=open_key,
        QueryInfoKey=lambda key: (len(adapters), 0, 0),
        EnumKey=lambda key, index: list(adapters)[index],
        QueryValueEx=query_value,
    )
    monkeypatch.setitem(sys.modules, "winreg", winreg)
    assert windows_adapters() == [
        ("amd", "AMD Radeon RX 7800 XT", ""),
        ("intel", "Intel(R) Arc(TM) Graphics", ""),
    ]
    assert vendor_of("NVIDIA", "NVIDIA GeForce GTX 1080") == "nvidia" and vendor_of("Microsoft") == ""


def test_this_machine_asks_the_operating_system_where_nvidia_smi_finds_nothing(monkeypatch):
    monkeypatch.setattr(setup_plan, "nvidia_gpu", lambda: None)
    monkeypatch.setattr(setup_plan.platform, "system", lambda: "Linux")
    monkeypatch.setattr(setup_plan, "gpu_adapters", lambda system: [("amd", "Navi 31 [Radeon RX 7900 XTX]", "gfx1100")])
    found = setup_plan.this_machine()
    assert (found.gpu_vendor, found.gfx_target, found.nvidia_smi_ok) == ("amd", "gfx1100", False)
    monkeypatch.setattr(setup_plan, "nvidia_gpu", lambda: ("NVIDIA GeForce RTX 3060", (8, 6), (581, 57)))
    assert setup_plan.this_machine().gpu_vendor == "nvidia"


def windows(card, capability, driver):
    return Machine("Windows", "AMD64", nvidia_smi_ok=True, gpu=card, compute_capability=capability, driver=driver)


@pytest.mark.parametrize(
    "card, capability",
    [("NVIDIA GeForce GTX 1080", (6, 1)), ("Quadro P4000", (6, 1)), ("NVIDIA TITAN V", (7, 0)),
     ("NVIDIA GeForce GTX 970", (5, 2))],
)  # fmt: skip
def test_native_windows_gtx_10xx_quadro_p_and_titan_v_train_on_the_cuda_12_6_build(card, capability):
    p = plan(windows(card, capability, (581, 57)), "2.21.0")
    assert (p.backend, p.gpu) == ("torch", "cuda")
    assert p.packages == ["torch==2.14.1+cu126", "--index-url", f"{INDEX}/cu126"]
    assert "CUDA 12.6 build, the last with kernels for this card" in p.messages[0]


def test_cards_older_than_any_pytorch_build_and_old_drivers_are_told_so():
    kepler = plan(windows("NVIDIA GeForce GTX 780", (3, 5), (474, 44)), "2.21.0")
    assert kepler.gpu == "cpu" and "older than any PyTorch build" in kepler.messages[0]
    linux_maxwell = plan(Machine("Linux", nvidia_smi_ok=True, compute_capability=(5, 2), driver=(580, 95)), "2.21.0")
    assert (
        linux_maxwell.gpu == "cpu"
        and "`--backend torch` installs PyTorch's CUDA 12.6 build" in linux_maxwell.messages[0]
    )
    chosen = plan(
        Machine("Linux", nvidia_smi_ok=True, compute_capability=(5, 2), driver=(580, 95)), "2.21.0", backend="torch"
    )
    assert chosen.gpu == "cuda" and chosen.packages[0] == "torch==2.14.1+cu126"


@pytest.mark.parametrize("system", ["Windows", "Linux"])
@pytest.mark.parametrize(
    "card", ["Intel(R) Arc(TM) A770 Graphics", "Intel Corporation Meteor Lake-P [Intel Arc Graphics]"]
)
def test_intel_arc_trains_on_pytorchs_xpu_build(system, card):
    p = plan(Machine(system, gpu_vendor="intel", gpu=card), "2.21.0")
    assert (p.backend, p.gpu) == ("torch", "xpu")
    assert p.packages == ["torch==2.14.1+xpu", "--index-url", f"{INDEX}/xpu"]
    assert "Intel's GPU driver" in p.messages[0]


def test_intel_graphics_the_xpu_build_does_not_drive_stay_on_the_cpu_and_say_why():
    uhd = plan(
        Machine("Linux", gpu_vendor="intel", gpu="Intel Corporation Raptor Lake-S GT1 [UHD Graphics 770]"), "2.21.0"
    )
    assert (uhd.backend, uhd.gpu, uhd.packages) == ("tensorflow", "cpu", [])
    assert "XPU build drives Intel Arc" in uhd.messages[0] and "hosted notebook" in uhd.messages[0]
    unnamed = plan(Machine("Linux", gpu_vendor="intel"), "2.21.0")
    assert "lspci, from pciutils" in unnamed.messages[0]


@pytest.mark.parametrize(
    "card, target",
    [("Navi 31 [Radeon RX 7900 XT/7900 XTX]", "gfx1100"), ("Navi 48 [Radeon RX 9070 XT]", "gfx1201"),
     ("Aqua Vanjaram [Instinct MI300X]", "gfx942"), ("Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]", "gfx1030")],
)  # fmt: skip
def test_linux_amd_gpus_the_rocm_build_has_kernels_for_train_on_it(card, target):
    p = plan(Machine("Linux", gpu_vendor="amd", gpu=card, gfx_target=target), "2.21.0")
    assert (p.backend, p.gpu) == ("torch", "rocm")
    assert p.packages == ["torch==2.14.1+rocm7.2", "--index-url", f"{INDEX}/rocm7.2"]
    assert target in p.messages[0] and "render" in p.messages[0] and "NVIDIA GPUs only" in p.backend_reason


def test_an_rdna2_card_outside_the_rocm_build_gets_the_override_as_an_opt_in_with_its_risk():
    rx_6700 = Machine("Linux", gpu_vendor="amd", gpu="Navi 22 [Radeon RX 6700 XT]", gfx_target="gfx1031")
    p = plan(rx_6700, "2.21.0")
    assert (p.backend, p.gpu, p.packages) == ("tensorflow", "cpu", [])
    text = "\n".join(p.messages)
    assert "no kernels for gfx1031" in text and "HSA_OVERRIDE_GFX_VERSION=10.3.0" in text and "crashes" in text
    chosen = plan(rx_6700, "2.21.0", backend="torch")
    assert chosen.gpu == "rocm" and chosen.packages[0] == "torch==2.14.1+rocm7.2"
    assert "HSA_OVERRIDE_GFX_VERSION=10.3.0" in "\n".join(chosen.messages)
    no_kfd = plan(Machine("Linux", gpu_vendor="amd", gpu="Navi 31"), "2.21.0")
    assert no_kfd.gpu == "cpu" and "/sys/class/kfd" in no_kfd.messages[0]


def test_tensorflow_chosen_by_hand_on_a_gpu_pytorch_drives_says_what_it_gives_up():
    forced = plan(
        Machine("Linux", gpu_vendor="amd", gpu="Navi 31", gfx_target="gfx1100"), "2.21.0", backend="tensorflow"
    )
    assert (forced.backend, forced.gpu) == ("tensorflow", "cpu")
    assert "PyTorch's ROCM build would train on Navi 31 (leave out --backend)" in forced.messages[0]


def test_windows_amd_is_told_what_exists_today():
    p = plan(Machine("Windows", "AMD64", gpu_vendor="amd", gpu="AMD Radeon RX 7900 XTX"), "2.21.0")
    assert (p.backend, p.gpu, p.packages) == ("tensorflow", "cpu", [])
    assert "no ROCm build for Windows" in p.messages[0] and "repo.radeon.com" in p.messages[0]
    assert "hosted notebook" in p.messages[0]


def test_machines_with_no_gpu_route_are_pointed_at_a_hosted_notebook():
    for machine_without in (Machine("Darwin", "x86_64"), Machine("Linux"), Machine("Windows")):
        assert "hosted notebook" in "\n".join(plan(machine_without, "2.21.0").messages)


def test_a_cpu_only_setup_pins_the_cpu_build_and_forced_cpu_wins_over_any_vendor():
    cpu = plan(Machine("Linux", gpu_vendor="amd", gfx_target="gfx1100"), "2.21.0", backend="torch", cpu_only=True)
    assert cpu.gpu == "cpu" and cpu.packages == ["torch==2.14.1+cpu", "--index-url", f"{INDEX}/cpu"]
    forced = plan(Machine("Linux", gpu_vendor="intel", gpu="Arc A770"), "2.21.0", cpu_only=True)
    assert (forced.backend, forced.gpu) == ("tensorflow", "cpu")


def test_the_installed_build_is_checked_against_the_plan():
    p = plan(windows("NVIDIA GeForce RTX 3060", (8, 6), (581, 57)), "2.21.0")
    assert torch_build_problem(p, "2.14.1+cu130") == ""
    kept = torch_build_problem(p, "2.14.1+cpu")  # what pip keeps for a bare torch==2.14.1
    assert "2.14.1+cpu is installed" in kept and 'pip install --force-reinstall "torch==2.14.1+cu130"' in kept
    assert f"--index-url {INDEX}/cu130" in kept
    assert "not installed" in torch_build_problem(p, None)
    assert torch_build_problem(plan(Machine("Linux"), "2.21.0"), "2.14.1+cpu") == ""  # no torch in that plan
    assert torch_build_problem(plan(Machine("Darwin", "arm64"), "2.21.0"), "2.14.1") == ""


def test_check_build_exits_1_on_a_build_the_plan_did_not_ask_for(monkeypatch, capsys):
    monkeypatch.setattr(setup_plan, "this_machine", lambda: windows("NVIDIA GeForce GTX 1080", (6, 1), (581, 57)))
    monkeypatch.setattr(setup_plan, "package_version", lambda name: "2.14.1+cpu")
    assert main(["--check-build"]) == 1 and "torch 2.14.1+cu126" in capsys.readouterr().err
    monkeypatch.setattr(setup_plan, "package_version", lambda name: "2.14.1+cu126")
    assert main(["--check-build"]) == 0


@pytest.mark.parametrize(
    "facts, backend, gpu",
    [({"system": "Linux", "gpu_vendor": "amd", "gpu": "AMD Radeon RX 7900 XTX", "gfx_target": "gfx1100"}, "torch", "rocm"),
     ({"system": "Windows", "gpu_vendor": "intel", "gpu": "Intel(R) Arc(TM) B580 Graphics"}, "torch", "xpu"),
     ({"system": "Windows", "gpu": "NVIDIA GeForce GTX 1060 6GB", "compute_capability": "6.1", "driver": "566.36"},
      "torch", "cuda"),
     ({"system": "Windows", "gpu_vendor": "amd", "gpu": "AMD Radeon RX 6600"}, "tensorflow", "cpu"),
     ({"system": "Darwin", "machine": "arm64"}, "torch", "mps")],
)  # fmt: skip
def test_the_json_plan_for_a_machine_file_gives_backend_gpu_and_packages(tmp_path, capsys, facts, backend, gpu):
    described = tmp_path / "machine.json"
    described.write_text(json.dumps(facts))
    assert main(["--json", "--machine", str(described)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["backend"], answer["gpu"]) == (backend, gpu)
    assert all(package.startswith("torch==2.14.1") for package in answer["packages"][:1])
    assert answer["machine"]["gpu_vendor"] == facts.get("gpu_vendor", "nvidia" if "gpu" in facts else "")


def test_a_machine_file_with_an_unknown_vendor_is_refused(tmp_path):
    described = tmp_path / "machine.json"
    described.write_text(json.dumps({"system": "Linux", "gpu_vendor": "matrox", "gpu": "G200"}))
    with pytest.raises(SystemExit, match="nvidia, amd or intel"):
        main(["--json", "--machine", str(described)])


def test_the_probe_reads_nothing_on_a_machine_without_these_files(tmp_path):
    assert machine.linux_adapters(str(tmp_path / "none"), str(tmp_path / "none"), lspci_text="") == []


def fake_torch(hip=None, cuda_names=(), xpu_names=()):
    """What PyTorch's ROCm, CUDA and XPU builds answer, for the listing the doctor and training use."""
    cuda = types.SimpleNamespace(
        is_available=lambda: bool(cuda_names),
        device_count=lambda: len(cuda_names),
        get_device_name=lambda index: cuda_names[index],
        get_device_capability=lambda index: (11, 0) if hip else (8, 6),
        get_device_properties=lambda index: types.SimpleNamespace(gcnArchName="gfx1100:sramecc-:xnack-"),
    )
    xpu = types.SimpleNamespace(
        is_available=lambda: bool(xpu_names),
        device_count=lambda: len(xpu_names),
        get_device_name=lambda index: xpu_names[index],
        _is_compiled=lambda: bool(xpu_names),
    )
    mps = types.SimpleNamespace(is_available=lambda: False)
    return types.SimpleNamespace(
        cuda=cuda,
        xpu=xpu,
        backends=types.SimpleNamespace(mps=mps),
        version=types.SimpleNamespace(hip=hip, cuda="13.0" if cuda_names and not hip else None),
    )


def test_pytorch_lists_amd_gpus_with_their_gfx_target_and_intel_gpus_as_xpu(monkeypatch):
    from bigcats.environment.gpus import torch_gpus

    monkeypatch.setitem(sys.modules, "torch", fake_torch(hip="7.2.53211", cuda_names=["AMD Radeon RX 7900 XTX"]))
    assert torch_gpus() == [
        {"name": "cuda:0", "device_name": "AMD Radeon RX 7900 XTX (gfx1100)", "compute_capability": None}
    ]
    monkeypatch.setitem(sys.modules, "torch", fake_torch(xpu_names=["Intel(R) Arc(TM) A770 Graphics"]))
    assert torch_gpus() == [
        {"name": "xpu:0", "device_name": "Intel(R) Arc(TM) A770 Graphics", "compute_capability": None}
    ]
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_names=["NVIDIA GeForce RTX 3060"]))
    assert torch_gpus()[0]["compute_capability"] == [8, 6]
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    assert torch_gpus() == []
