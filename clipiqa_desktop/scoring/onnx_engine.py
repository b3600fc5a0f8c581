"""The image tower in ONNX Runtime: the CPU engine for machines without native bf16.

On a CPU without AVX512-BF16/AMX the image tower runs in fp32, and eager PyTorch reaches about a third
of the machine's FLOP peak on it; ONNX Runtime's fused kernels run the same graph 1.3-1.6× faster
with outputs equal to ~1e-7 (benchmarks/index_throughput.py prints both). So:

- `export_tower` traces the size-agnostic tower (scoring/pooling.py), wrapped with CLIP's
  normalisation so that the graph takes the uint8 batch as it comes, to ONNX once per model and
  weights, with dynamic batch, height and width. The file is cached in the user's cache folder under
  a fingerprint of the weights themselves (not only their name) and the versions that made it;
  writing goes through a temporary file and a rename, so two processes never read half a file.
- `OnnxTower` runs it with ONNX Runtime on the CPU, its threads sized like torch's and waiting
  passively (as OMP_WAIT_POLICY=PASSIVE does for torch), so they leave the cores to the decode
  threads between batches.
- `choose_engine` is `--engine auto` on the CPU: it times both engines on a 512-pixel analysis image
  and remembers the faster for this model, this CPU, these thread and library versions
  (engine-choice.json in the cache folder), so the measurement is paid once.

Torch stays in charge of loading weights, the text tower and GPUs. Nothing here imports onnxruntime
before an ONNX engine is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .constants import CACHE_ENV
from .errors import ScoringError

log = logging.getLogger(__name__)

# Bumped whenever what export_tower writes changes, so older cached graphs are not reused.
EXPORT_VERSION = 1
OPSET = 17
# The shape --engine auto times both engines on: a 3:2 photo at the CPU's default analysis size.
PROBE_SHAPE = (1, 3, 341, 512)


def onnx_unavailable() -> str | None:
    """None when ONNX Runtime and the exporter's onnx package import, else why not (one line)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"ONNX Runtime is not installed ({exc.name}): pip install onnxruntime onnx"
    return None


def cache_dir() -> Path:
    """Where exported graphs and the engine choice live: $CLIPIQA_CACHE_DIR, else the user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("clipiqa-desktop", appauthor=False)


class NormalisedTower(nn.Module):
    """uint8 (N, 3, H, W) RGB -> the tower's features, with CLIP's normalisation inside the graph."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, visual: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.visual = visual
        self.register_buffer("mean", mean.reshape(1, 3, 1, 1).float())
        self.register_buffer("std", std.reshape(1, 3, 1, 1).float())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.float() / 255.0 - self.mean) / self.std
        return self.visual(x).float()


class TraceableAttention(nn.Module):
    """nn.MultiheadAttention's arithmetic with every length left symbolic, for the export only.

    Traced as it is, nn.MultiheadAttention bakes the token count and the batch of the sample into
    its reshapes, so a ViT graph would take one input size only. This computes the same attention
    from the same weights (no mask, no dropout: an image tower in eval mode has neither).
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        **_: Any,
    ) -> tuple[torch.Tensor, None]:
        m = self.mha
        if attn_mask is not None:
            raise TypeError("an attention mask in the image tower is not supported by the ONNX export")
        key = query if key is None else key
        value = key if value is None else value
        if not m.batch_first:  # to (N, L, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        e = m.embed_dim
        if m.in_proj_weight is not None:
            w, b = m.in_proj_weight, m.in_proj_bias
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
            b = m.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])

        def heads(t: torch.Tensor) -> torch.Tensor:  # (N, L, E) -> (N, heads, L, head_dim)
            return t.unflatten(-1, (m.num_heads, -1)).transpose(1, 2)

        q = heads(nn.functional.linear(query, wq, bq))
        k = heads(nn.functional.linear(key, wk, bk))
        v = heads(nn.functional.linear(value, wv, bv))
        att = torch.softmax((q @ k.transpose(-2, -1)) * (m.head_dim**-0.5), dim=-1)
        out = m.out_proj((att @ v).transpose(1, 2).flatten(2))
        return (out if m.batch_first else out.transpose(0, 1)), None


@contextlib.contextmanager
def _traceable(module: nn.Module) -> Iterator[None]:
    """Swap every nn.MultiheadAttention in `module` for TraceableAttention, and back afterwards."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MultiheadAttention):
                swapped.append((parent, name, child))
                setattr(parent, name, TraceableAttention(child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def tower_fingerprint(visual: nn.Module, model_id: str) -> str:
    """A hash of the tower's weights and structure and of what the export depends on."""
    import onnx
    import open_clip

    h = hashlib.blake2b(digest_size=12)
    meta = f"{model_id}|{type(visual).__name__}|torch {torch.__version__}|onnx {onnx.__version__}"
    h.update(f"{meta}|open_clip {open_clip.__version__}|export {EXPORT_VERSION}|opset {OPSET}".encode())
    for name, tensor in visual.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(memoryview(tensor.detach().float().contiguous().numpy()).cast("B"))
    return h.hexdigest()


def export_tower(tower: NormalisedTower, path: Path, sample_hw: tuple[int, int] = (64, 96)) -> None:
    """Trace `tower` to an ONNX file at `path` (dynamic batch, height and width), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.randint(0, 256, (1, 3, *sample_hw), dtype=torch.uint8)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), _traceable(tower):
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
            # onnxscript; tracing warnings are about the branches pooling.py keeps trace-safe.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                tower,
                (sample,),
                tmp,
                dynamo=False,
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch"}},
                opset_version=OPSET,
            )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class OnnxTower:
    """An exported tower in an ONNX Runtime CPU session: uint8 (N, 3, H, W) in, float32 features out."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads sleep between calls instead of spinning: the decode threads need those cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        self.path = path
        self.fingerprint = path.stem.rsplit("-", 1)[-1]  # load_onnx_tower names files by it
        self.threads = options.intra_op_num_threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        out = self._session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.uint8)})[0]
        return np.asarray(out, dtype=np.float32)


def load_onnx_tower(
    tower: NormalisedTower, model_id: str, threads: int | None = None, folder: Path | None = None
) -> OnnxTower:
    """The cached export of `tower` (made now when missing or unreadable) in an ONNX Runtime session.
    ScoringError, with what to do, when it cannot be exported or loaded."""
    reason = onnx_unavailable()
    if reason is not None:
        raise ScoringError(f"--engine onnx: {reason}")
    folder = folder or cache_dir() / "onnx"
    arch = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id.split("/")[0])
    path = folder / f"{arch}-{tower_fingerprint(tower.visual, model_id)}.onnx"
    for attempt in (1, 2):
        if not path.is_file():
            started = time.perf_counter()
            try:
                export_tower(tower, path)
            except OSError as exc:
                raise ScoringError(
                    f"cannot write the ONNX export to {folder}: {exc.strerror or exc} "
                    f"(free some space, set {CACHE_ENV}, or use --engine torch)"
                ) from exc
            except Exception as exc:  # the exporter fails in many ways on towers it cannot trace
                log.debug("ONNX export failed", exc_info=True)
                raise ScoringError(
                    f"this model's image tower cannot be exported to ONNX ({type(exc).__name__}); "
                    "use --engine torch"
                ) from exc
            log.info("exported the image tower to %s in %.1f s", path, time.perf_counter() - started)
        try:
            return OnnxTower(path, threads)
        except Exception as exc:  # a truncated or foreign file in the cache: export it again, once
            if attempt == 2:
                raise ScoringError(f"ONNX Runtime cannot load {path}: {exc}; use --engine torch") from exc
            log.warning("the cached ONNX export %s cannot be loaded (%s); exporting it again", path, exc)
            path.unlink(missing_ok=True)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class EngineChoice:
    """What --engine auto picked, and the seconds per probe image that decided it."""

    engine: str
    torch_s: float
    onnx_s: float
    remembered: bool  # read from engine-choice.json rather than measured in this process

    def describe(self) -> str:
        """'measured now: torch 2.15, onnx 3.02 images/s at 512 × 341 px' (or 'remembered: ...')."""
        how = "remembered" if self.remembered else "measured now"
        return (
            f"{how}: torch {1 / self.torch_s:.2f}, onnx {1 / self.onnx_s:.2f} images/s "
            f"at {PROBE_SHAPE[3]} × {PROBE_SHAPE[2]} px"
        )


def choice_key(fingerprint: str, precision: str, threads: int) -> str:
    """What a remembered choice depends on: the weights, this CPU, the precision, threads, versions."""
    import onnxruntime

    return "|".join(
        (
            fingerprint,
            _cpu_name(),
            platform.machine(),
            precision,
            f"threads {threads}",
            f"torch {torch.__version__}",
            f"onnxruntime {onnxruntime.__version__}",
        )
    )


def choose_engine(
    key: str,
    run_torch: Callable[[torch.Tensor], Any],
    run_onnx: Callable[[np.ndarray], Any],
    choices_file: Path | None = None,
    repeats: int = 3,
) -> EngineChoice:
    """The faster engine for `key`: remembered in `choices_file`, else timed now and remembered."""
    choices_file = choices_file or cache_dir() / "engine-choice.json"
    known = _read_choices(choices_file)
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("engine") in ("torch", "onnx"):
        try:
            return EngineChoice(str(entry["engine"]), float(entry["torch_s"]), float(entry["onnx_s"]), True)
        except (KeyError, TypeError, ValueError):
            pass  # a hand-edited or older entry: measure again
    pixels = torch.randint(0, 256, PROBE_SHAPE, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch_s = _median_seconds(lambda: run_torch(pixels), repeats)
    onnx_s = _median_seconds(lambda: run_onnx(pixels.numpy()), repeats)
    choice = EngineChoice("onnx" if onnx_s < torch_s else "torch", torch_s, onnx_s, False)
    known[key] = {"engine": choice.engine, "torch_s": torch_s, "onnx_s": onnx_s, "measured": time.time()}
    try:
        choices_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="engine-choice.", suffix=".part", dir=choices_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(known, f, indent=1, sort_keys=True)
        os.replace(tmp, choices_file)
    except OSError as exc:  # a read-only or full cache folder: measure again next time, still work now
        log.warning("cannot remember the engine choice in %s: %s", choices_file, exc.strerror or exc)
    return choice


def _median_seconds(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return max(float(np.median(times)), 1e-9)


def _read_choices(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cpu_name() -> str:
    """The CPU's model name and a hash of its feature flags (one model name can hide Zen 3 and Zen 4)."""
    name, flags = platform.processor() or "unknown CPU", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name == (platform.processor() or "unknown CPU"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{name} flags#{hashlib.blake2b(flags.encode(), digest_size=4).hexdigest()}"
