"""A dependency-free progress line: chunks, events, rate and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``.

    >>> format_duration(75), format_duration(3725)
    ('1:15', '1:02:05')
    """
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_count(n: float) -> str:
    """Short human count.

    >>> format_count(950), format_count(12_300), format_count(4_560_000)
    ('950', '12.3k', '4.56M')
    """
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def bar(fraction: float, width: int = 24) -> str:
    """A text bar.

    >>> bar(0.5, 10)
    '[#####.....]'
    """
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Progress:
    """Redraws one line on a terminal; elsewhere prints a line every ``interval`` seconds."""

    def __init__(
        self,
        total_chunks: int,
        total_events: int,
        stream: TextIO | None = None,
        interval: float = 10.0,
        enabled: bool = True,
        unit: str = "chunks",
    ):
        self.enabled = enabled
        self.unit = unit
        self.total_chunks = total_chunks
        self.total_events = total_events
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self.start = time.monotonic()
        self.last_print = 0.0
        self.chunks = 0
        self.events = 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.events / elapsed if elapsed > 0 else 0.0
        frac = (
            self.events / self.total_events
            if self.total_events
            else self.chunks / max(self.total_chunks, 1)
        )
        eta = (self.total_events - self.events) / rate if rate > 0 else float("nan")
        eta_text = format_duration(eta) if eta == eta else "?"
        if not self.total_events:
            return f"{bar(frac)} {self.chunks}/{self.total_chunks} {self.unit}"
        return (
            f"{bar(frac)} {self.chunks}/{self.total_chunks} {self.unit}, "
            f"{format_count(self.events)}/{format_count(self.total_events)} events, "
            f"{format_count(rate)} ev/s, ETA {eta_text}"
        )

    def update(self, chunks: int, events: int) -> None:
        self.chunks += chunks
        self.events += events
        now = time.monotonic()
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif now - self.last_print >= self.interval:
            self.last_print = now
            print(self.line(), file=self.stream)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
