"""Device and numeric-precision choice for the image encoder."""

from __future__ import annotations

import logging
from typing import Literal

import torch

from .constants import DEVICE_CHOICES, ENGINE_CHOICES, PRECISION_CHOICES
from .errors import DeviceUnavailable

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                "--device cuda was asked for, but torch sees no CUDA GPU here "
                "(use --device cpu or --device auto)"
            )
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise DeviceUnavailable("--device mps was asked for, but Apple MPS is not available here")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceUnavailable(f"unknown device {name!r}; choose from: {', '.join(DEVICE_CHOICES)}")


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bfloat16 convolutions/matmuls natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Pick the image-encoder precision.

    GPU: fp16 (the softmax is always taken in fp32). CPU: bf16 weights with channels-last memory
    where the CPU has native bf16, because measured scores stay within 0.01 of fp32 there
    (benchmarks/scoring_speed.py prints the deviation); fp32 otherwise.
    """
    name = name.lower()
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if name not in ("fp32", "bf16", "fp16"):
        raise DeviceUnavailable(f"unknown precision {name!r}; choose from: {', '.join(PRECISION_CHOICES)}")
    if name == "fp16" and device.type == "cpu":
        raise DeviceUnavailable("fp16 is for GPUs; on the CPU use --precision bf16 or fp32")
    if name == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        log.warning(
            "this CPU has no native bf16 (AVX512-BF16/AMX): --precision bf16 is emulated here and runs "
            "about 3x slower than fp32, which --precision auto picks"
        )
    return name  # type: ignore[return-value]


def torch_dtype(precision: Precision) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def resolve_engine(name: str, device: torch.device, precision: str = "auto") -> str:
    """What runs the image tower: "torch", "onnx", or "auto" (CPU only: timed once, the faster kept).

    ONNX Runtime runs the tower in fp32 on the CPU; GPUs and an explicit bf16/fp16 stay with torch.
    """
    name, precision = name.lower(), precision.lower()
    if name not in ENGINE_CHOICES:
        raise DeviceUnavailable(f"unknown engine {name!r}; choose from: {', '.join(ENGINE_CHOICES)}")
    if name == "onnx":
        if device.type != "cpu":
            raise DeviceUnavailable(
                f"--engine onnx runs on the CPU; on {device.type} the image tower runs in torch "
                "(use --engine torch or auto, or --device cpu)"
            )
        if precision not in ("auto", "fp32"):
            raise DeviceUnavailable(
                f"--engine onnx runs in fp32; --precision {precision} needs --engine torch"
            )
        return "onnx"
    if name == "auto" and (device.type != "cpu" or precision not in ("auto", "fp32")):
        return "torch"
    return name
