"""What the benchmarks print about the machine they ran on (figures are compared only within a run)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_description() -> str:
    """CPU model, the SIMD flags torch's CPU kernels care about, and the load average."""
    model, flags = "unknown CPU", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    present = [f for f in wanted if f in flags]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{model}; flags: {' '.join(present) or 'none of ' + ' '.join(wanted)}; load average {load}"
