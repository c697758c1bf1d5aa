"""An independent Node.js client (tests/node_client/, written from bridge/PROTOCOL.md alone) holds the
same conversation as the Python client against the real server, and gets the same face."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from npcface.bridge.client import SidecarClient
from npcface.core.arkit import ARKIT_NAMES
from conftest import fixture_line
from server_helpers import WAIT_S, running_server

NODE_CLIENT = Path(__file__).resolve().parent / "node_client"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (tools/bootstrap.sh installs it)")


def wav_pcm(path: Path) -> tuple[bytes, int]:
    import soundfile

    samples, rate = soundfile.read(path, dtype="int16")
    assert samples.ndim == 1
    return samples.astype("<i2").tobytes(), rate


@pytest.fixture(scope="module")
def node_modules():
    if not (NODE_CLIENT / "node_modules" / "zeromq").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_CLIENT, check=True, timeout=300)
    return NODE_CLIENT / "node_modules"


def test_node_client_holds_the_conversation_and_gets_the_python_clients_face(node_modules, portrait_path):
    wav, text = fixture_line("line_bilabials")
    with running_server() as server:
        result = subprocess.run(["node", str(NODE_CLIENT / "client.mjs"), server.endpoint, str(wav), text,
                                 str(portrait_path)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        with SidecarClient(server.endpoint, timeout_s=WAIT_S) as python_client:
            python_client.open_session("py", channels=["arkit", "visemes"], fps=30, seed=0, motion="rules")
            pcm, rate = wav_pcm(wav)
            reference = python_client.say_pcm("py", pcm, rate, text=text, chunk_s=0.1)

    assert summary["welcome"]["protocol"] == "1.2" and summary["welcome"]["arkit"] == list(ARKIT_NAMES)
    assert summary["welcome"]["motion"] == ["rules", "learned"]
    assert summary["opened"] == {"type": "opened", "motion": "rules"}  # 1.2: the generator it asked for
    bad = summary["badRequest"]
    assert (bad["type"], bad["code"], bad["id"]) == ("error", "unknown_session", bad["sentId"])
    latents = summary["latents"]
    assert latents["errors"] == [] and latents["lineEnd"]["ticks"] == len(latents["ticks"])
    assert latents["lineEnd"]["duration"] == pytest.approx(len(pcm) / 2 / rate, abs=1e-3)
    # The same PCM in the same 100 ms chunks from Node and from Python: the same face.
    node_arkit = np.array([t["arkit"] for t in latents["ticks"]])
    python_arkit = np.array([t.arkit for t in reference.ticks])
    assert node_arkit.shape == python_arkit.shape == (reference.line_end.ticks, 52)
    np.testing.assert_allclose(node_arkit, python_arkit, atol=1e-5)
    assert all(len(t["visemes"]) == 15 for t in latents["ticks"])
    frames = summary["frames"]
    assert frames["errors"] == [] and frames["frameSizeOk"]
    assert frames["frames"] == frames["lineEnd"]["frames_sent"] == frames["lineEnd"]["ticks"] > 0
    assert frames["lineEnd"]["frames_dropped"] == 0
    assert summary["closed"] == {"type": "closed", "ticks_sent": len(latents["ticks"])}
