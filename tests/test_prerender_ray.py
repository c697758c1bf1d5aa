"""The Ray engine runs the same per-line function as the process pool: on a local Ray cluster
(ray.init with 2 CPUs, no dashboard, started by `--ray local`) the CSV and JSON files are
byte-identical to the pool's. A Ray address that does not answer gets one line, exit 2, fast."""
from __future__ import annotations

import socket
import time

import pytest

from test_prerender import fixture_rows, outputs_of, run_cli, write_manifest

pytest.importorskip("ray")


def test_ray_and_the_process_pool_write_the_same_bytes(tmp_path):
    manifest = write_manifest(tmp_path, fixture_rows(tmp_path, 6, "csv json"))
    pool = run_cli(str(manifest), "-o", str(tmp_path / "pool"), "--workers", "2")
    assert pool.returncode == 0, pool.stderr
    ray = run_cli(str(manifest), "-o", str(tmp_path / "ray"), "--ray", "local", "--workers", "2")
    assert ray.returncode == 0, ray.stderr
    assert "6 done" in ray.stdout and "local ray cluster (2 CPUs)" in ray.stdout
    from_pool, from_ray = outputs_of(tmp_path / "pool"), outputs_of(tmp_path / "ray")
    assert len(from_pool) == 12 and from_pool == from_ray


def test_a_ray_address_that_does_not_answer_gets_one_line_fast(tmp_path):
    manifest = write_manifest(tmp_path, fixture_rows(tmp_path, 1))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    result = run_cli(str(manifest), "-o", str(tmp_path / "out"), "--ray", f"127.0.0.1:{port}")
    assert time.perf_counter() - started < 20
    assert result.returncode == 2
    assert result.stderr.strip() == (f"npcface prerender: error: Ray cluster at 127.0.0.1:{port} does not answer "
                                     "(Connection refused)")
    bad = run_cli(str(manifest), "-o", str(tmp_path / "out"), "--ray", "nowhere")
    assert bad.returncode == 2 and "--ray must be auto, local or HOST:PORT" in bad.stderr


def test_ray_loads_only_for_ray_runs():
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys; from npcface.bridge.cli import build_parser; "
                             "build_parser().parse_args(['prerender', 'x.csv', '-o', 'out']); "
                             "import npcface.core.prerender.engines; print('ray' in sys.modules)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"
