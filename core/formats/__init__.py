"""File formats in and out: Live Link Face CSV, motion JSON, engine animation clips, mp4/PNG video, plots."""
