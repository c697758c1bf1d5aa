"""Capture: a real talking video (or a performance take) -> ARKit curves, and retargeting them onto a portrait."""
