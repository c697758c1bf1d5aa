"""Errors a user may see. Every entry point turns these into a one-line message, never a traceback."""


class NpcfaceError(Exception):
    """Base for errors caused by the user's input or environment (not by a bug)."""

    code = "bad_input"


class AudioError(NpcfaceError):
    code = "bad_audio"


class TextError(NpcfaceError):
    code = "bad_text"


class ControlError(NpcfaceError):
    """Bad emotion, fps, gaze or other control value."""

    code = "bad_control"


class ImageError(NpcfaceError):
    code = "bad_image"


class NoFaceError(ImageError):
    code = "no_face"


class FormatError(NpcfaceError):
    """A file (CSV, rig, video) that does not parse."""

    code = "bad_format"
