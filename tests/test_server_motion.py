"""Protocol 1.2 motion generators (PROTOCOL.md section 7.5) over real sockets, and `--motion` on
the command line: each session gets the generator it asks for, a 1.1 client sees nothing new,
bad names and bad weights files get specific errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.arkit import ARKIT_INDEX
from server_helpers import RawClient, greeting_pcm, s16, send_line

NPCFACE = [sys.executable, "-m", "npcface.bridge.cli"]


def speak(client: RawClient, session: str, motion: str | None) -> np.ndarray:
    """Open ``session`` with ``motion``, speak the greeting without text; its lip gap per tick."""
    header = {"type": "open", "session": session, "fps": 30}
    if motion is not None:
        header["motion"] = motion
    opened = client.request(header)
    assert opened.type == "opened", opened
    samples, _ = greeting_pcm()
    end_id = send_line(client, session, s16(samples))
    ticks, _, line_end, errors = client.collect_line(session, end_id)
    assert not errors and len(ticks) == line_end.ticks > 0
    arkit = np.array([t.arkit for t in ticks])
    return opened, arkit[:, ARKIT_INDEX["JawOpen"]] - arkit[:, ARKIT_INDEX["MouthClose"]]


def test_welcome_lists_the_generators_and_opened_says_which_runs(server):
    with RawClient(server.endpoint) as client:
        welcome = client.request({"type": "hello", "protocol": "1.2"})
        assert welcome.protocol == "1.2"
        assert welcome.capabilities["motion"] == ["rules", "learned"]
        assert welcome.capabilities["default_motion"] in ("rules", "learned")
        opened, rules_gap = speak(client, "rules", "rules")
        assert opened.motion == "rules"
        opened, default_gap = speak(client, "default", None)
        assert opened.motion == welcome.capabilities["default_motion"]
        assert rules_gap.max() > 0.2  # the mouth opens on the greeting's vowels


def test_learned_and_rules_sessions_side_by_side_differ_in_the_mouth_only(server):
    with RawClient(server.endpoint) as client:
        client.request({"type": "hello", "protocol": "1.2"})
        opened, learned_gap = speak(client, "learned", "learned")
        assert opened.motion == "learned"
        _, rules_gap = speak(client, "rules", "rules")
    assert learned_gap.shape == rules_gap.shape
    assert learned_gap.max() > 0.2 and np.abs(learned_gap - rules_gap).max() > 0.05
    assert np.corrcoef(learned_gap, rules_gap)[0, 1] > 0.3  # both follow the same syllables


def test_a_1_1_client_sees_no_motion_field_and_a_bad_name_is_a_bad_request(server):
    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.1"}).protocol == "1.1"
        opened = client.request({"type": "open", "session": "old", "fps": 30})
        assert opened.type == "opened" and opened.motion is None
        error = client.request({"type": "open", "session": "bad", "motion": "neural"})
        assert error.type == "error" and error.code == "bad_request"
        assert any("motion" in e for e in error.details["errors"])


@pytest.mark.parametrize("motion, message", [
    ("neural", "motion must be one of rules, learned or a .safetensors weights file, got 'neural'"),
    ("missing.safetensors", "motion weights file not found: missing.safetensors"),
])
def test_animate_with_a_bad_motion_says_what_is_wrong(tmp_path, motion, message):
    wav, _ = fixture_line("line_greeting")
    result = subprocess.run([*NPCFACE, "animate", str(wav), "--motion", motion, "-o", str(tmp_path / "x.csv")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"npcface animate: error: {message}"


def test_serve_with_a_truncated_weights_file_stops_in_one_line(tmp_path):
    from npcface.core.motion.learned_weights import SHIPPED_WEIGHTS

    broken = tmp_path / "actor.safetensors"
    broken.write_bytes(SHIPPED_WEIGHTS.read_bytes()[:1000])
    result = subprocess.run([*NPCFACE, "serve", "--bind", "tcp://127.0.0.1:0", "--motion", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("npcface serve: error: ") and str(broken) in lines[0]


def test_warm_up_loads_every_motion_a_client_may_open():
    """A rules-default server loads the learned mouth (torch, its weights) at warm-up, not in the
    loop thread at the first learned `open`, where it stalled every talking session for seconds."""
    code = ("import sys; from npcface.bridge.server import Server; "
            "from npcface.core.motion import learned; "
            "server = Server('tcp://127.0.0.1:0', motion='rules'); "
            "before = learned._cached_model.cache_info().currsize; server.warm_up(concurrent_lines=1); "
            "print(before, learned._cached_model.cache_info().currsize, 'torch' in sys.modules); server.close()")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    before, after, torch_loaded = shown.stdout.split()
    assert (before, after, torch_loaded) == ("0", "1", "True")
