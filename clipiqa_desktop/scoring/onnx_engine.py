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

OPSET = 17
# The shape --engine auto times both engines on: a 3:2 photo at the CPU's default analysis size.
PROBE_SHAPE = (1, 3, 341, 512)


class ExportUnsupported(ScoringError):
    """This tower cannot run in ONNX Runtime (too large, untraceable, or the graph differs from
    torch): true of these weights and this code, so `auto` remembers it and stops trying."""


def onnx_unavailable() -> str | None:
    """None when ONNX Runtime and the exporter's onnx package import, else why not (one line)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"ONNX Runtime is not installed ({exc.name}): pip install onnxruntime onnx"
    except Exception as exc:  # a broken install: a protobuf too new for onnx, a missing DLL
        return f"ONNX Runtime does not import ({type(exc).__name__}: {str(exc)[:100]})"
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


def tower_fingerprint(tower: NormalisedTower, model_id: str) -> str:
    """A hash of everything the exported graph depends on: the weights and normalisation (the state
    dict), the open_clip config the tower was built from (so two .json configs of one name, or one
    edited in place, never share an export), the code that shapes the graph (this module and
    pooling.py) and the library versions."""
    import onnx
    import open_clip

    h = hashlib.blake2b(digest_size=12)
    meta = f"{model_id}|{type(tower.visual).__name__}|torch {torch.__version__}|onnx {onnx.__version__}"
    h.update(f"{meta}|open_clip {open_clip.__version__}|opset {OPSET}".encode())
    config = open_clip.get_model_config(model_id.split("/")[0])
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for source in (Path(__file__), Path(__file__).with_name("pooling.py")):
        h.update(source.read_bytes())
    for name, tensor in tower.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(memoryview(tensor.detach().float().contiguous().numpy()).cast("B"))
    return h.hexdigest()


# ONNX keeps a graph's weights inside one protobuf file only up to 2 GB; larger towers (ViT-H and
# up) stay with torch rather than scatter external-data files over the shared cache folder.
MAX_EXPORT_BYTES = 1_900_000_000
# Exports kept in the cache folder (the most recently used); older ones go when one is added.
KEEP_EXPORTS = 4


def export_tower(tower: NormalisedTower, path: Path, sample_hw: tuple[int, int] = (64, 96)) -> None:
    """Trace `tower` to an ONNX file at `path` (dynamic batch, height and width), check the graph
    against torch at another batch and shape, then rename it into place (readable by all, so a
    shared cache folder works). ScoringError when the graph does not match torch."""
    size = sum(t.numel() * 4 for t in tower.state_dict().values())
    if size > MAX_EXPORT_BYTES:
        raise ExportUnsupported(
            f"the image tower ({size / 1e9:.1f} GB in fp32) is too large for one ONNX file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    sample = torch.randint(0, 256, (1, 3, *sample_hw), dtype=torch.uint8, generator=gen)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), _traceable(tower):
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
            # onnxscript; tracing warnings are about the branches pooling.py keeps trace-safe,
            # and _check_export below catches any shape the trace froze all the same.
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
        _check_export(tower, Path(tmp), (sample_hw[1] + 16, sample_hw[0]))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _check_export(tower: NormalisedTower, path: Path, other_hw: tuple[int, int]) -> None:
    """The graph must give torch's features at a batch and shape other than the traced sample's."""
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (2, 3, *other_hw), dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        want = tower(pixels).numpy()
    try:
        got = OnnxTower(path, threads=1)(pixels.numpy())
    except Exception as exc:  # ONNX Runtime's own errors: a frozen shape fails a Reshape
        raise ExportUnsupported(
            f"the exported graph does not run at another size ({type(exc).__name__})"
        ) from exc
    scale = max(1.0, float(np.abs(want).max()))
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-4 * scale):
        raise ExportUnsupported("the exported graph does not give torch's numbers at another size")


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
        # Without the arena, memory goes back after each batch (RN50, 4 × 1024 px: peak 787 MB and
        # 318 MB idle, against 1181 MB held for the whole run with it) at the same speed.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
        self.path = path
        self.threads = options.intra_op_num_threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        out = self._session.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.uint8)})[0]
        return np.asarray(out, dtype=np.float32)


def export_path(model_id: str, fingerprint: str) -> Path:
    """Where the export of a tower with this fingerprint is cached."""
    arch = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id.split("/")[0])
    return cache_dir() / "onnx" / f"{arch}-{fingerprint}.onnx"


def load_onnx_tower(tower: NormalisedTower, path: Path, threads: int | None = None) -> OnnxTower:
    """The cached export at `path` (made now from `tower` when missing or unreadable) in an ONNX
    Runtime session. ScoringError, with what to do, when it cannot be exported or loaded."""
    reason = onnx_unavailable()
    if reason is not None:
        raise ScoringError(f"--engine onnx: {reason}")
    try:
        for attempt in (1, 2):
            if not path.is_file():
                _export_into_cache(tower, path)
            try:
                session = OnnxTower(path, threads)
            except Exception as exc:  # a truncated or foreign file in the cache: export it again, once
                if attempt == 2:
                    raise ScoringError(f"ONNX Runtime cannot load {path}: {exc}; use --engine torch") from exc
                log.warning("the cached ONNX export %s cannot be loaded (%s); exporting it again", path, exc)
                path.unlink(missing_ok=True)
                continue
            with contextlib.suppress(OSError):  # most recently used: kept when the cache is pruned
                os.utime(path)
            return session
    except OSError as exc:
        raise ScoringError(
            f"cannot write the ONNX export to {path.parent}: {exc.strerror or exc} "
            f"(check that folder and its free space, set {CACHE_ENV}, or use --engine torch)"
        ) from exc
    raise AssertionError("unreachable")


def _export_into_cache(tower: NormalisedTower, path: Path) -> None:
    log.warning(
        "preparing the CPU engine once for this model: exporting its image tower to ONNX "
        "(seconds; cached in %s)",
        path.parent,
    )
    started = time.perf_counter()
    try:
        export_tower(tower, path)
    except (OSError, ScoringError):
        raise
    except Exception as exc:  # the exporter fails in many ways on towers it cannot trace
        log.debug("ONNX export failed", exc_info=True)
        raise ExportUnsupported(
            f"this model's image tower cannot be exported to ONNX ({type(exc).__name__}); use --engine torch"
        ) from exc
    log.info("exported the image tower to %s in %.1f s", path, time.perf_counter() - started)
    _prune(path.parent, keep=path)


def _prune(folder: Path, keep: Path) -> None:
    """Delete leftovers of killed exports (a day old) and all but the KEEP_EXPORTS newest exports."""
    now = time.time()
    try:
        for part in folder.glob("*.part"):
            if now - part.stat().st_mtime > 86400:
                part.unlink(missing_ok=True)
        exports = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [p for p in exports if p != keep][KEEP_EXPORTS - 1 :]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # another process pruning at the same time, or a read-only folder
        log.info("pruning %s: %s", folder, exc)


@dataclass(frozen=True)
class EngineChoice:
    """What --engine auto picked, and the seconds per probe image that decided it (or why torch)."""

    engine: str
    torch_s: float = 0.0
    onnx_s: float = 0.0
    remembered: bool = False  # read from engine-choice.json rather than measured in this process
    reason: str | None = None  # why ONNX Runtime could not run this tower (then engine is torch)

    def describe(self) -> str:
        """'measured now: torch 2.15, onnx 3.02 images/s at 512 × 341 px' (or 'remembered: ...')."""
        how = "remembered" if self.remembered else "measured now"
        if self.reason is not None:
            return f"{how}: ONNX Runtime cannot run it: {self.reason}"
        return (
            f"{how}: torch {1 / self.torch_s:.2f}, onnx {1 / self.onnx_s:.2f} images/s "
            f"at {PROBE_SHAPE[3]} × {PROBE_SHAPE[2]} px"
        )


# ONNX must be this much faster to be chosen: torch is the reference path, and a closer result can
# flip with the machine's load. A choice older than REMEASURE_S is measured again.
MARGIN = 0.05
REMEASURE_S = 30 * 86400


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


def choices_path() -> Path:
    return cache_dir() / "engine-choice.json"


def remembered_choice(key: str) -> EngineChoice | None:
    """The choice remembered for `key`, or None when there is none, it is unreadable or stale."""
    entry = _read_choices(choices_path()).get(key)
    if not isinstance(entry, dict) or entry.get("engine") not in ("torch", "onnx"):
        return None
    try:
        if time.time() - float(entry["measured"]) > REMEASURE_S:
            return None
        reason = entry.get("reason")
        if reason is not None:
            return EngineChoice("torch", remembered=True, reason=str(reason))
        torch_s, onnx_s = float(entry["torch_s"]), float(entry["onnx_s"])
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited or older entry: measure again
    if not (torch_s > 0 and onnx_s > 0):
        return None
    return EngineChoice(str(entry["engine"]), torch_s, onnx_s, True)


def measure_choice(
    key: str,
    run_torch: Callable[[torch.Tensor], Any],
    run_onnx: Callable[[np.ndarray], Any],
    rounds: int = 2,
) -> EngineChoice:
    """Time both engines on the probe image, alternating (ABBA: a drifting load costs both alike),
    choose onnx only when it is MARGIN faster, and remember the choice."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, PROBE_SHAPE, dtype=torch.uint8, generator=gen)
    calls = {"torch": lambda: run_torch(pixels), "onnx": lambda: run_onnx(pixels.numpy())}
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    for name in ("torch", "onnx"):
        calls[name]()  # warm-up: first-call allocations and kernel selection
    for i in range(max(1, rounds)):
        for name in ("torch", "onnx") if i % 2 == 0 else ("onnx", "torch"):
            for _ in range(2):
                started = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - started)
    torch_s, onnx_s = (max(float(np.median(times[n])), 1e-9) for n in ("torch", "onnx"))
    choice = EngineChoice("onnx" if onnx_s < torch_s * (1 - MARGIN) else "torch", torch_s, onnx_s)
    remember_choice(key, choice)
    return choice


def remember_choice(key: str, choice: EngineChoice) -> None:
    """Write `choice` for `key` (atomically); a read-only or full cache folder only costs a warning."""
    choices_file = choices_path()
    known = _read_choices(choices_file)
    entry: dict[str, Any] = {"engine": choice.engine, "measured": time.time()}
    if choice.reason is not None:
        entry["reason"] = choice.reason
    else:
        entry.update(torch_s=choice.torch_s, onnx_s=choice.onnx_s)
    known[key] = entry
    try:
        choices_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="engine-choice.", suffix=".part", dir=choices_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(known, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, choices_file)
    except OSError as exc:  # measure again next time, still work now
        log.warning("cannot remember the engine choice in %s: %s", choices_file, exc.strerror or exc)


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
