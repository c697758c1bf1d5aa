"""Shared test fixtures. Tests use only what the project ships (fixtures/), never ../shared/data."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def fixture_line(name: str) -> tuple[Path, str]:
    """(wav path, its text) of a committed espeak-ng fixture, e.g. "line_bilabials"."""
    return FIXTURES / f"{name}.wav", (FIXTURES / f"{name}.txt").read_text().strip()


@pytest.fixture
def portrait_path() -> Path:
    return FIXTURES / "portrait_astronaut.png"


@pytest.fixture(scope="module")
def server():
    """A real sidecar on a free loopback port, shared by one test module."""
    from server_helpers import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def client(server):
    """A raw protocol client that has said hello to the module's sidecar."""
    from server_helpers import RawClient

    with RawClient(server.endpoint) as client:
        assert client.hello().type == "welcome"
        yield client
