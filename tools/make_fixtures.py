"""Regenerate the committed fixtures: espeak-ng speech from known text, and the portrait.

Run once by a developer (`python tools/make_fixtures.py`); the outputs are committed so tests and
the demo never depend on espeak-ng's exact version.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# name -> text. Chosen to cover bilabials (P B M), labiodentals (F V), rounded and open vowels.
LINES = {
    "line_greeting": "Well met, stranger. The baker told me about a map, but beware the bridge at midnight.",
    "line_bilabials": "Bob maps purple bumps by the pump, maybe before Monday.",
    "line_vowels": "Ah, father saw a large calm heart far off. Who knew, you owe me.",
    "line_fricatives": "Five vivid foxes ferry seven very heavy violins.",
}


def speak(name: str, text: str) -> None:
    wav = FIXTURES / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    (FIXTURES / f"{name}.txt").write_text(text + "\n")


def portrait() -> None:
    from PIL import Image
    from skimage import data

    # NASA photo of Eileen Collins (public domain), as shipped by scikit-image.
    Image.fromarray(data.astronaut()).save(FIXTURES / "portrait_astronaut.png")


if __name__ == "__main__":
    FIXTURES.mkdir(exist_ok=True)
    for name, text in LINES.items():
        speak(name, text)
    portrait()
    (FIXTURES / "lines.json").write_text(json.dumps(LINES, indent=2) + "\n")
