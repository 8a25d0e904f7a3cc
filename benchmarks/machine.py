"""The machine a benchmark's numbers were measured on, as its results files name it.

Times from different machines are not comparable, and on a CPU the main factor besides the
threads is whether it runs bfloat16 natively (the quick start's mixed precision) or falls back
to float32, so the description names the processor, the threads and that precision.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from lit_gradcam.precision import default_precision

CPU_INFO = Path("/proc/cpuinfo")


def processor() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows of it."""
    if CPU_INFO.exists():
        for line in CPU_INFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """Processor (and GPU, when there is one), torch threads, and the default precision."""
    parts = [processor()]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    parts += [f"{torch.get_num_threads()} torch threads", f"precision {default_precision()}"]
    return ", ".join(parts)
