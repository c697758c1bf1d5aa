"""Regenerate the phonetics fixtures: espeak-ng lines with words no dictionary has.

Run once by a developer (`python tools/make_phonetics_fixtures.py`); the outputs are committed.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# Invented names (not in cmudict) between ordinary words, with bilabials inside the names.
LINES = {
    "line_names": "Zorbulax and Quillindra met Brimwick by the moat.",
}


def speak(name: str, text: str) -> None:
    wav = FIXTURES / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    (FIXTURES / f"{name}.txt").write_text(text + "\n")


if __name__ == "__main__":
    for name, text in LINES.items():
        speak(name, text)
