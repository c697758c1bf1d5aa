"""Saying a video was generated: the invisible watermark and C2PA content credentials."""
