"""Third-party packages that can fail to load, and the one line a user sees when one does.

A venv can hold a package that installs but does not load: torchaudio 2.11.1 beside torch 2.11.0
fails with an undefined symbol, a half-finished pip run leaves a module without its library. Such
an error is not a bug in npcface and not the user's input: it names the package and the command
that rebuilds the venv from requirements.lock, instead of a traceback.
"""
from __future__ import annotations

import traceback

from .errors import NpcfaceError

# import name -> the distribution pip installs it from
PACKAGES = {
    "torch": "torch", "torchaudio": "torchaudio", "mediapipe": "mediapipe", "pocketsphinx": "pocketsphinx",
    "av": "av (PyAV)", "cv2": "opencv-contrib-python (cv2)", "numpy": "numpy", "scipy": "scipy",
    "matplotlib": "matplotlib", "PIL": "pillow (PIL)", "soundfile": "soundfile", "zmq": "pyzmq (zmq)",
    "msgpack": "msgpack", "pydantic": "pydantic", "pydantic_core": "pydantic", "safetensors": "safetensors",
}
REPAIR = "repair the venv with `bash tools/demo.sh` (it reinstalls what differs from requirements.lock)"


class DependencyError(NpcfaceError):
    """A package npcface needs is installed but cannot be loaded."""

    code = "dependency_unavailable"


def failed_package(exc: BaseException) -> str | None:
    """The import name of the package whose loading raised ``exc``; None when ``exc`` did not come
    from loading one of PACKAGES (an ordinary error, or a bug)."""
    if isinstance(exc, ImportError) and exc.name and exc.name.split(".")[0] in PACKAGES:
        return exc.name.split(".")[0]
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        # A module's top level running: an import in progress. The deepest one is the package
        # that failed (torchaudio's own library, not the npcface module that imported it).
        if frame.f_code.co_name == "<module>":
            top = str(frame.f_globals.get("__name__", "")).split(".")[0]
            if top in PACKAGES:
                found = top
    return found


def dependency_error(exc: BaseException) -> DependencyError | None:
    """The one-line DependencyError for an exception raised while loading a package, else None."""
    name = failed_package(exc)
    if name is None:
        return None
    detail = (str(exc).strip().splitlines() or [""])[0]
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return DependencyError(f"{PACKAGES[name]} failed to load ({type(exc).__name__}: {detail}); {REPAIR}")
