"""What a prerender run tells people and build systems: progress events as they happen
(a bar on a terminal, or one JSON object per line of stdout with ``--progress json``) and, at the
end, ``report.json`` (every line's status, seconds, outputs, failure reason) and ``report.md``."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .line import PARTIAL, LineResult, result_dict


@dataclass
class RunTally:
    """Counts as results arrive; lines per minute and time left from the lines run in this session."""

    total: int
    started: float = field(default_factory=time.perf_counter)
    results: list[LineResult] = field(default_factory=list)

    def add(self, result: LineResult) -> None:
        self.results.append(result)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def settled(self) -> int:
        return len(self.results)

    def lines_per_min(self) -> float:
        ran = sum(1 for r in self.results if r.status != "skipped" and r.seconds > 0)
        elapsed = time.perf_counter() - self.started
        return 60.0 * ran / elapsed if ran and elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.lines_per_min()
        return 60.0 * (self.total - self.settled) / rate if rate > 0 else None

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "done": self.count("done"), "skipped": self.count("skipped"),
                "failed": self.count("failed")}


def line_event(tally: RunTally, result: LineResult) -> dict:
    eta = tally.eta_s()
    return {"event": "line", **result_dict(result), **tally.counts(), "settled": tally.settled,
            "lines_per_min": round(tally.lines_per_min(), 2), "eta_s": None if eta is None else round(eta, 1)}


def bar_detail(tally: RunTally) -> str:
    eta = tally.eta_s()
    left = "?" if eta is None else (f"{eta / 60:.1f} min" if eta >= 90 else f"{eta:.0f} s")
    return f"{tally.count('failed')} failed, {tally.lines_per_min():.1f} lines/min, {left} left"


def write_reports(out_dir: Path, tally: RunTally, header: dict, interrupted: bool = False) -> Path:
    """report.json and report.md in ``out_dir`` (each written whole, then moved into place)."""
    results = sorted(tally.results, key=lambda r: r.line_no)
    seconds = time.perf_counter() - tally.started
    document = {**header, **tally.counts(), "interrupted": interrupted, "seconds": round(seconds, 2),
                "lines_per_min": round(tally.lines_per_min(), 2), "lines": [result_dict(r) for r in results]}
    _atomic_text(out_dir / "report.json", json.dumps(document, indent=1))
    _atomic_text(out_dir / "report.md", _markdown(document, results))
    return out_dir / "report.md"


def _markdown(document: dict, results: list[LineResult]) -> str:
    lines = [f"# prerender report: {document.get('manifest', '')}", "",
             f"{document['done']} done, {document['skipped']} already done (skipped), {document['failed']} failed "
             f"of {document['total']} lines in {document['seconds']:.1f} s "
             f"({document['lines_per_min']:.1f} lines/min, {document.get('engine', '')})."
             + (" **Interrupted**: the lines not listed were not run." if document["interrupted"] else ""), ""]
    outside = document.get("outside_paths") or []
    if outside:
        lines += [f"{len(outside)} path(s) lead outside the manifest's folder:", ""]
        lines += [f"- line {o['line_no']} (id {o['id']}): `{o['path']}`" for o in outside] + [""]
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["## Failed", "", "| line | id | reason |", "|---|---|---|"]
        lines += [f"| {r.line_no} | {r.id or '?'} | {r.reason.replace('|', '/')} |" for r in failed] + [""]
    lines += ["## Lines", "", "| line | id | status | seconds | outputs |", "|---|---|---|---|---|"]
    lines += [f"| {r.line_no} | {r.id} | {r.status} | {r.seconds:.2f} | {' '.join(r.outputs)} |" for r in results]
    return "\n".join(lines) + "\n"


def _atomic_text(path: Path, text: str) -> None:
    temp = path.parent / PARTIAL / f"{os.getpid()}-{path.name}"
    temp.parent.mkdir(exist_ok=True)
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
