"""clipiqa-desktop: photo culling with CLIP-IQA scores."""

import os as _os

__version__ = "0.1.0"

# Decoding threads and torch's OpenMP threads share the CPU while indexing. By default OpenMP
# threads spin-wait between parallel regions, burning the cores the JPEG decoders need; passive
# waiting measured +30 % end-to-end photos/s at analysis size 224 and +16 % at 512 on 2 cores
# (benchmarks/index_throughput.py). It must be set before torch is first imported; an explicit
# user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ONNX Runtime (the CPU engine, scoring/onnx_engine.py) ships with telemetry on: on import it writes
# a device id and queues a "ProcessInfo" event (Python path, OS, CPU) under ~/.cache/Microsoft. This
# application sends nothing anywhere, so that is switched off before onnxruntime can be imported;
# ORT_DISABLE_TELEMETRY=1 is its full opt-out (no uploader, no device id, no offline cache).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
