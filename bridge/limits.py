"""The sidecar's limits and liveness settings (PROTOCOL.md sections 8 and 9)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"  # loopback only: anything wider needs CurveZMQ keys
# Talking sessions are stepped together at most this often (`serve --step-interval-ms`). Stepping
# after every burst made steps of ~3 sessions at 32 talking NPCs, whose fixed cost kept a core
# busy; 10 ms cut the server's CPU by about a quarter at 16-32 NPCs for ticks ~6 ms later (PROTOCOL 7.2).
STEP_INTERVAL_S = 0.01
MAX_STEP_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 16 * 1024 * 1024
    max_sessions_per_client: int = 32
    max_sessions: int = 256
    max_line_seconds: float = 600.0
    max_avatar_pixels: int = 40_000_000
    max_avatars: int = 64
    max_text_chars: int = 4000
    max_fps: int = 120
    max_frame_size: int = 1024

    def to_wire(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass(frozen=True)
class Liveness:
    idle_timeout_s: float = 30.0

    @property
    def heartbeat_s(self) -> float:
        # A third of the timeout: two lost pings still leave the client alive.
        return self.idle_timeout_s / 3.0
