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
