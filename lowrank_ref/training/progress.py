"""Progress within an epoch: a live ``\\r`` line, a line about every 10%, or nothing."""
from __future__ import annotations

import math
import sys
import time
from typing import Callable

from .._validate import check_choice

__all__ = ["Progress", "PROGRESS_MODES", "format_seconds"]

#: The modes of :class:`Progress` (``train(progress=...)``).
PROGRESS_MODES = ("live", "lines", "off")


def format_seconds(s: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from one hour on.

    Examples
    --------
    >>> format_seconds(75), format_seconds(3725)
    ('1:15', '1:02:05')
    """
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Progress within an epoch: a live ``\\r`` line ("live"), a line about every 10% of the
    epoch through ``log`` ("lines"), or nothing ("off").

    Parameters
    ----------
    mode : {"live", "lines", "off"}
    log : callable
        Receives the lines of mode "lines".
    stream : file object, optional
        Where mode "live" writes (default ``sys.stdout``).
    """

    def __init__(self, mode: str, log: Callable, stream=None):
        self.mode, self.log = check_choice(mode, "mode", PROGRESS_MODES), log
        self.stream = stream or sys.stdout
        self.width = 0

    def start(self, label: str, n_batches: int, n_samples: int, early: bool = False) -> None:
        """``early``: in "lines" mode also report batches 1, 2, 4, 8, ... before the first
        10% (the first epoch, where the ranks of adaptive DLRT fall)."""
        self.label, self.n_batches, self.n_samples = label, n_batches, n_samples
        self.t0 = self.last = time.perf_counter()
        self.every = max(1, math.ceil(n_batches / 10))
        self.early = early

    def update(self, batches: int, samples: int, extra: str = "") -> None:
        """Report ``batches`` of the epoch done (``samples`` samples), if it is time to."""
        if self.mode == "off":
            return
        now = time.perf_counter()
        if self.mode == "live" and now - self.last < 0.2 and batches < self.n_batches:
            return
        power_of_two = batches & (batches - 1) == 0
        if (self.mode == "lines" and batches % self.every and batches != self.n_batches
                and not (self.early and power_of_two and batches < self.every)):
            return
        if self.mode == "lines" and batches == self.n_batches:
            return                                  # the epoch line follows
        self.last = now
        rate = samples / max(now - self.t0, 1e-9)
        left = (self.n_samples - samples) / rate if rate > 0 else 0.0
        text = (f"{self.label}: {batches}/{self.n_batches} batches "
                f"({100 * batches / self.n_batches:.0f}%), {rate:,.0f} samples/s, "
                f"{format_seconds(left)} left" + (f", {extra}" if extra else ""))
        if self.mode == "live":
            self.stream.write("\r" + text.ljust(self.width))
            self.stream.flush()
            self.width = len(text)
        else:
            self.log(text)

    def finish(self) -> None:
        """Clear the live line (the epoch's summary line follows)."""
        if self.mode == "live" and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
