"""Connecting to a Ray cluster: the address forms we accept, a reachability check that fails in
seconds instead of Ray's minutes of retries, and the cluster's CPUs and GPUs."""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import MISSING_EXTRA, ClusterError

# How long the check of a HOST:PORT may take before the cluster counts as unreachable.
REACH_TIMEOUT_S = 5.0
# How long joining a reachable cluster (ray.init) may take; $CLIPIQA_RAY_JOIN_TIMEOUT seconds if set.
JOIN_TIMEOUT_ENV = "CLIPIQA_RAY_JOIN_TIMEOUT"
JOIN_TIMEOUT_S = 60.0
# Ray picks the machine's network address for a node, even for a cluster on this machine. For a
# local cluster (no address, or one on loopback) we keep every connection on 127.0.0.1: nothing of
# a desktop's scoring job is offered to the network. Ray reads this when it is first imported.
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster this process is connected to."""

    address: str  # as the user gave it, or "local" for one started by this process
    cpus: int
    gpus: int

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == "local" else f"the Ray cluster at {self.address}"
        gpus = f", {self.gpus} GPU" + ("s" if self.gpus != 1 else "") if self.gpus else ""
        return f"{where} ({self.cpus} CPUs{gpus})"


def require_ray() -> ModuleType:
    """The `ray` module, or ClusterError saying which extra to install."""
    try:
        import ray
        import ray.data  # the pipeline engine of ray[data]
    except ImportError:
        raise ClusterError(MISSING_EXTRA) from None
    return ray


def parse_address(address: str | None) -> tuple[str | None, tuple[str, int] | None]:
    """(what ray.init is given, the (host, port) to check first). None = start a local instance
    (or the cluster of $RAY_ADDRESS); 'auto' = the cluster started on this machine by `ray start`;
    HOST:PORT = a cluster's head (GCS port, 6379 by default); ray://HOST:PORT = Ray Client."""
    text = (address or os.environ.get("RAY_ADDRESS") or "").strip()
    if not text:
        return None, None
    if text == "auto":
        return "auto", None
    client = text.startswith("ray://")
    rest = text[len("ray://") :] if client else text
    if not client and rest and ":" not in rest and "/" not in rest:  # HOST alone: the head's port
        rest = text = f"{rest}:{DEFAULT_HEAD_PORT}"
    host, sep, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClusterError(
            f"{text!r} is not a Ray address: give HOST:PORT (the head's port, 6379 by default), "
            "ray://HOST:PORT (Ray Client) or auto (the cluster `ray start` runs on this machine)"
        )
    return text, (host, int(port_text))


DEFAULT_HEAD_PORT = 6379  # `ray start --head`'s GCS port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(host: str, port: int, timeout: float = REACH_TIMEOUT_S) -> None:
    """ClusterError unless something accepts connections at host:port within `timeout`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except socket.gaierror:
        reason = "unknown host"
    except TimeoutError:
        reason = f"no answer within {timeout:.0f} s"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ClusterError(
        f"cannot reach the Ray cluster at {host}:{port} ({reason}); is `ray start --head` running "
        "there, and is the port open?"
    )


def connect(address: str | None) -> Cluster:
    """Connect this process to Ray (see parse_address); ClusterError with one line when it cannot."""
    target, endpoint = parse_address(address)
    if target is None or target == "auto" or (endpoint is not None and _is_loopback(endpoint[0])):
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")  # before the first import of ray
    ray = require_ray()
    if endpoint is not None:
        check_reachable(*endpoint)
    # Ray's notices (token authentication set up) are not the user's business here: what fails
    # reaches the command as an exception, said in one line.
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if ray.is_initialized():
            ray.shutdown()
        if target is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            timeout = float(os.environ.get(JOIN_TIMEOUT_ENV) or JOIN_TIMEOUT_S)
            _init_within(ray, timeout, address=target, **quiet)
    except ClusterError:
        raise
    except Exception as exc:  # ConnectionError, a version mismatch, a refused Ray Client ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"cannot connect to the Ray cluster at {target or 'local'}: {first}") from None
    _quiet_data()
    resources = ray.cluster_resources()
    return Cluster(target or "local", int(resources.get("CPU", 0)), int(resources.get("GPU", 0)))


def _init_within(ray: ModuleType, timeout: float, **kwargs: Any) -> None:
    """ray.init(**kwargs), or ClusterError when it has not returned within `timeout`: a cluster that
    answers but does not let this process in (token authentication without our token, another Ray
    version) has Ray retry for ever."""
    done = threading.Event()
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=join, name="ray-init", daemon=True).start()
    if not done.wait(timeout):
        raise ClusterError(
            f"the Ray cluster at {kwargs.get('address')} answers but did not let this process join within "
            f"{timeout:.0f} s: does it need its token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH), or is it "
            "another Ray version?"
        )
    if failure:
        raise failure[0]


def _quiet_data() -> None:
    """Ray Data's own progress bars and per-run banners off: the command prints its progress line."""
    from ray.data import DataContext

    # before turning the bars off (that warns); CRITICAL: a failed job's remote traceback is said
    # by the command in one line (ray_scoring._cause), not logged here
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False


# How long leaving the cluster may take before the command ends without waiting for it.
SHUTDOWN_SECONDS = 20.0


def disconnect(seconds: float | None = None) -> bool:
    """Leave the cluster (a local instance started by `connect` stops); False when Ray's shutdown
    did not end within `seconds`. After a Ctrl-C in the middle of a job, ray.shutdown() can wait
    for Ray Data's executor threads for good (seen once in three interrupted runs); everything
    the command must keep is committed by then, so it is run in a daemon thread and, past the
    limit, left to end with the process."""
    import sys
    import threading

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return True
    done = threading.Thread(target=ray.shutdown, name="ray-shutdown", daemon=True)
    done.start()
    done.join(SHUTDOWN_SECONDS if seconds is None else seconds)
    return not done.is_alive()


def leaves_the_cluster(run: Callable[..., int]) -> Callable[..., int]:
    """For a command's run(args, ...): with --ray, leave the cluster when it ends, however it ends;
    if Ray's shutdown hangs past SHUTDOWN_SECONDS, say so and end the process with the command's
    exit code (what it committed is committed; nothing else waits for Ray)."""

    @functools.wraps(run)
    def wrapper(args: Any, *more: Any, **named: Any) -> int:
        code = 2
        try:
            code = run(args, *more, **named)
            return code
        finally:
            if getattr(args, "ray", None) is not None and not disconnect():
                import sys

                print(
                    f"clipiqa-desktop: Ray did not shut down within {SHUTDOWN_SECONDS:.0f} s; leaving it "
                    "(what was written is saved)",
                    file=sys.stderr,
                )
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    return wrapper
