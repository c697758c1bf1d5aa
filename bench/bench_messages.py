"""The sidecar's own CPU per message: N latent-only sessions streaming a line in real time (20 ms
chunks, starts spread over one second) through a real ROUTER/DEALER pair on loopback, the server
loop in a thread of this process. Reported per code tree (this one, and --before REV's in the same
run): the loop thread's CPU, the part of it inside step_sessions (the motion itself), and the rest
(the message path: reading, checking, decoding, queueing audio, encoding and sending ticks),
per session-second of audio and per message; the client's CPU beside it.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_messages.py --before REV [--client-before REV] [--sessions 32] [--repeat 2]

--profile FILE: the current tree's loop thread under cProfile (python -m pstats FILE).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, add_revision_options, run_at_revision, use_code_from


def measure(sessions: int, motion: str, profile: str | None, client_code: str | None = None) -> dict:
    """One run against the server of the npcface imported here (use_code_from first)."""
    import npcface.bridge.server as server_module
    from npcface.bridge.limits import Limits

    stepping = {"cpu": 0.0, "calls": 0}
    step_sessions = server_module.step_sessions

    def timed_step(*args, **kwargs):  # the loop thread's CPU inside the motion step
        started = time.thread_time()
        try:
            return step_sessions(*args, **kwargs)
        finally:
            stepping["cpu"] += time.thread_time() - started
            stepping["calls"] += 1

    server_module.step_sessions = timed_step
    from bench_bridge import greeting

    pcm, _ = greeting()
    server = server_module.Server("tcp://127.0.0.1:0", limits=Limits(max_sessions_per_client=256))
    server.warm_up()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    loop = threading.Thread(target=profiler.runcall if profiler else server.run,
                            args=(server.run,) if profiler else (), daemon=True)
    loop.start()
    while loop.ident is None:
        time.sleep(0.01)
    loop_clock = time.pthread_getcpuclockid(loop.ident)
    # the client in its own process (as an engine is): it says "start" when its sessions are open
    client = subprocess.Popen([sys.executable, __file__, "--client", server.endpoint, "--sessions", str(sessions),
                               "--motion", motion, *(["--client-code", client_code] if client_code else [])],
                              stdout=subprocess.PIPE, text=True)
    if client.stdout.readline().strip() != "start":
        raise SystemExit("the client did not start")
    seen = {"loop": time.clock_gettime(loop_clock), "step": stepping["cpu"], "calls": stepping["calls"]}
    out, _ = client.communicate()
    if client.returncode:
        raise SystemExit(f"the client failed (exit {client.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    loop_cpu = time.clock_gettime(loop_clock) - seen["loop"]
    step_cpu = stepping["cpu"] - seen["step"]
    steps = stepping["calls"] - seen["calls"]
    server.stop()
    loop.join()
    if profiler:
        profiler.dump_stats(profile)
    from bench_bridge import CHUNK_S

    pcm_bytes_per_s = 16000 * 2  # the greeting as 16 kHz s16le
    session_seconds = sessions * len(pcm) / pcm_bytes_per_s
    chunks = sessions * -(-len(pcm) // int(CHUNK_S * pcm_bytes_per_s))
    return {"sessions": sessions, "session_seconds": session_seconds, "messages": chunks + sessions,
            "ticks": result["ticks"], "steps": steps, "loop_cpu": loop_cpu, "step_cpu": step_cpu,
            "client_cpu": result["client_cpu"], "late_share": result["late_share"],
            "p50_ms": result["p50_ms"], "max_ms": result["max_ms"]}


def client(endpoint: str, sessions: int, motion: str, bench_code: str | None) -> None:
    """The sessions' client (bench_bridge.run_sessions, of the bench/ folder ``bench_code`` if
    given): "start", then its result as JSON."""
    if bench_code:  # an older run_sessions, without on_start: its hello and opens count too
        sys.path.insert(0, bench_code)
        sys.modules.pop("bench_bridge", None)
    import inspect

    import bench_bridge
    from bench_bridge import greeting, run_sessions

    bench_bridge.FIXTURES = REPO / "fixtures"  # the line of this checkout, whichever client
    pcm, _ = greeting()
    started = {}

    def on_start():
        print("start", flush=True)
        started["cpu"] = time.process_time()

    if "on_start" in inspect.signature(run_sessions).parameters:
        result = run_sessions(endpoint, sessions, pcm, None, echo=False, motion=motion, on_start=on_start)
    else:
        on_start()
        result = run_sessions(endpoint, sessions, pcm, None, echo=False, motion=motion)
    result["client_cpu"] = time.process_time() - started["cpu"]
    print(json.dumps({key: float(value) for key, value in result.items()}), flush=True)


def run_tree(before: str | None, arguments: list[str]) -> dict:
    """measure() in a fresh process: this tree's code, or git ``before``'s."""
    script = str(REPO / "bench" / "bench_messages.py")
    if before:
        out = run_at_revision(before, script, arguments)
    else:
        out = subprocess.run([sys.executable, script, "--json", *arguments], check=True, capture_output=True,
                             text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def bench_at(revision: str):
    """The bench/ folder of git ``revision``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="npcface-bench-") as tree:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "bench"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        yield str(Path(tree) / "bench")


def report(name: str, r: dict) -> str:
    per_second = 1000 / r["session_seconds"]
    outside = r["loop_cpu"] - r["step_cpu"]
    return (f"  {name:>18}: loop {per_second * r['loop_cpu']:5.1f} ms/session-s (step_sessions "
            f"{per_second * r['step_cpu']:5.1f}, outside it {per_second * outside:5.2f} = "
            f"{1e6 * outside / r['messages']:5.1f} us per message incl. its ticks); client "
            f"{per_second * r['client_cpu']:4.1f} ms/session-s; {r['ticks']} ticks, {r['steps']} steps, "
            f"{100 * r['late_share']:.1f}% late, max {r['max_ms']:.0f} ms; load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--motion", choices=("rules", "learned"), default="learned")
    parser.add_argument("--before", metavar="REV", help="also measure the server at git REV, alternating")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tree (alternating trees)")
    parser.add_argument("--profile", metavar="FILE", help="this tree's loop thread under cProfile (one run)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    parser.add_argument("--client-before", metavar="REV", help="also run this tree's server with the client "
                        "(bench_bridge.run_sessions) of git REV, for the client's own CPU")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # run the sessions' client against this endpoint
    parser.add_argument("--client-code", help=argparse.SUPPRESS)  # its bench/ folder
    args = parser.parse_args()
    if args.client:
        client(args.client, args.sessions, args.motion, args.client_code)
        return
    if args.json:
        use_code_from(args.code)
        if args.code:
            sys.modules["npcface"].__version__ = "before"
        print(json.dumps(measure(args.sessions, args.motion, args.profile, args.client_code)))
        return
    passed = ["--sessions", str(args.sessions), "--motion", args.motion]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; {args.sessions} "
          f"{args.motion} sessions, one connection, the greeting line in real time (20 ms chunks)", flush=True)
    for run in range(args.repeat):
        if args.before:
            print(report(args.before[:10], run_tree(args.before, passed)), flush=True)
        profile = ["--profile", args.profile] if args.profile and run == 0 else []
        print(report("now", run_tree(None, passed + profile)), flush=True)
        if args.client_before:
            with bench_at(args.client_before) as bench_code:
                print(report(f"now, client {args.client_before[:8]}",
                             run_tree(None, passed + ["--client-code", bench_code])), flush=True)


if __name__ == "__main__":
    main()
