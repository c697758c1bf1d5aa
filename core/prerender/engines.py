"""Where the lines run: a local process pool (default, one worker per core) or a Ray cluster.
Both run ``prerender_line.run_line`` on the same LineJobs and hand each LineResult to
``on_result`` in the parent as it arrives; only the dispatch differs.

Ray is imported only here and only for ``--ray``, so ``npcface --help`` stays fast.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from ..errors import NpcfaceError
from .line import LineJob, LineResult, run_line, warm_worker

RAY_CONNECT_TIMEOUT_S = 3.0


def run_local(jobs: Sequence[LineJob], workers: int, on_result: Callable[[LineResult], None]) -> None:
    """Run ``jobs`` on ``workers`` fresh processes (spawned: nothing of the parent's threads or
    native state is inherited), each warmed once by its initializer."""
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))), mp_context=context,
                             initializer=_init_pool_worker, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(run_line, job): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    on_result(_result_of(future, job))
        except BaseException:  # interrupted: let the lines in flight finish and record them
            running = [future for future in pending if not future.cancel()]
            for future in running:
                on_result(_result_of(future, pending[future]))
            raise


def _result_of(future, job: LineJob) -> LineResult:
    try:
        return future.result()
    except Exception as error:  # the worker process died (killed, out of memory): only this line fails
        return LineResult(id=job.row.id, line_no=job.row.line_no, status="failed",
                          reason=f"worker died: {type(error).__name__}: {error}")


def _init_pool_worker(parent_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides (it lets the lines in
    # flight finish, then writes the report), so workers print no tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    warm_worker()


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose parent was killed stops at once instead of finishing lines nobody records."""
    while os.getppid() == parent_pid:
        time.sleep(0.2)
    os._exit(1)


# ---------------------------------------------------------------------------- Ray

def run_ray(jobs: Sequence[LineJob], address: str, workers: int, on_result: Callable[[LineResult], None]) -> str:
    """Run ``jobs`` as Ray tasks (one CPU each) on the cluster at ``address``: "auto" joins the
    cluster running on this machine or starts a local one of ``workers`` CPUs; "local" always starts
    a local one; anything else is a cluster's ``HOST:PORT`` (or ``ray://HOST:PORT``), checked to
    answer within seconds. Returns a line describing the cluster."""
    ray = _import_ray()
    described = _connect(ray, address, workers)
    try:
        task = ray.remote(num_cpus=1)(run_line)
        pending = {task.remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # the task's worker or node was lost
                    result = LineResult(id=job.row.id, line_no=job.row.line_no, status="failed",
                                        reason=f"ray task failed: {type(error).__name__}: {str(error).splitlines()[0]}")
                on_result(result)
    finally:
        ray.shutdown()
    return described


def _import_ray():
    try:
        import ray
    except ImportError:
        raise NpcfaceError("--ray needs the ray package: pip install 'npcface[ray]' "
                           "(or drop --ray to use the local process pool)") from None
    return ray


def _connect(ray, address: str, workers: int) -> str:
    import logging

    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address in ("auto", "local"):
        if address == "auto":
            try:
                ray.init(address="auto", **{k: v for k, v in quiet.items() if k != "include_dashboard"})
                return f"ray cluster on this machine ({_cpus(ray)} CPUs)"
            except (ConnectionError, RuntimeError):
                pass  # none running: start one
        ray.init(num_cpus=max(1, workers), **quiet)
        return f"local ray cluster ({_cpus(ray)} CPUs)"
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise NpcfaceError(f"Ray cluster at {address} does not answer ({error.strerror or error})") from None
    try:
        ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise NpcfaceError(f"cannot join the Ray cluster at {address}: {str(error).splitlines()[0]}") from None
    return f"ray cluster at {address} ({_cpus(ray)} CPUs)"


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise NpcfaceError(f"--ray must be auto, local or HOST:PORT of a Ray cluster, got {address!r}")
    return host.strip("[]"), int(port)


def _cpus(ray) -> int:
    return int(ray.cluster_resources().get("CPU", 0))
