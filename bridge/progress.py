"""Progress of a long command on stderr: a one-line bar on a terminal; elsewhere nothing, or (for
jobs long enough to want a log) a plain line every tenth of the way."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, unit: str = "frames", plain: bool = False, stream=None):
        self.total, self.label, self.unit, self.plain = max(total, 1), label, unit, plain
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.perf_counter()

    def rate(self, done: int) -> float:
        """Items per second since the start."""
        return done / max(time.perf_counter() - self.started, 1e-6)

    def update(self, done: int, detail: str = "") -> None:
        count = f"{done}/{self.total} {self.unit}" + (f", {detail}" if detail else "")
        if self.enabled:
            filled = int(30 * done / self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {count} ")
            self.stream.flush()
        elif self.plain and (done % max(1, self.total // 10) == 0 or done == self.total):
            print(f"{self.label} {count}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
