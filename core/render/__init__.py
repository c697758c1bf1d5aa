"""Rig and render: a portrait becomes a Rig once; MotionFrames + Rig -> RGBA frames, and frames -> files."""
