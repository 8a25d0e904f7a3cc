"""benchmarks/machine.py names the processor from /proc/cpuinfo, and the precision the CLI
would default to, so a results file says where its times come from."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.benchmark_scripts import load_benchmark

from lit_gradcam.precision import default_precision

machine = load_benchmark("machine")


def test_processor_is_the_cpuinfo_model_name(tmp_path: Path, monkeypatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: Acme\nmodel name\t: Acme Turbo 9000\n")
    monkeypatch.setattr(machine, "CPU_INFO", info)
    assert machine.processor() == "Acme Turbo 9000"


def test_processor_without_cpuinfo_falls_back_to_platform(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(machine, "CPU_INFO", tmp_path / "absent")
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "riscv64")
    assert machine.processor() == "riscv64"


@pytest.mark.parametrize("threads", [1, 2])
def test_description_names_threads_and_precision(threads: int, monkeypatch) -> None:
    monkeypatch.setattr(machine.torch, "get_num_threads", lambda: threads)
    description = machine.describe_machine()
    assert description.startswith(machine.processor())
    assert f"{threads} torch threads" in description
    assert description.endswith(f"precision {default_precision()}")
