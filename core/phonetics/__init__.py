"""Phones on the audio timeline: forced alignment with text, recognition without, acoustic fallback for any language."""
