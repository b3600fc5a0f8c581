"""clipiqa-desktop: photo culling with CLIP-IQA scores."""

import os as _os

__version__ = "0.1.0"

# Decoding threads and torch's OpenMP threads share the CPU while indexing. By default OpenMP
# threads spin-wait between parallel regions, burning the cores the JPEG decoders need; passive
# waiting measured +30 % end-to-end photos/s at analysis size 224 and +16 % at 512 on 2 cores
# (benchmarks/index_throughput.py). It must be set before torch is first imported; an explicit
# user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
