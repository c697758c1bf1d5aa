"""Silence native (C++) chatter on file descriptor 2 while MediaPipe builds its graphs."""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

# fd 2 is process-wide: nested or concurrent silencing (server threads building rigs while a
# capture runs) must restore the real stderr exactly once, when the last user leaves.
_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None


@contextmanager
def native_stderr_silenced():
    """MediaPipe's C++ side prints set-up chatter (TFLite delegate, absl warnings) straight to
    file descriptor 2 while it builds its graph; users should only see npcface's own messages.
    (Use it only around graph set-up: a real error later still reaches the terminal.)"""
    global _depth, _saved_fd
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved_fd = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_fd is not None:
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _saved_fd = None
