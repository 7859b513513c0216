"""Peak resident memory of this process and its children (the Spark JVM), sampled."""

from __future__ import annotations

import os
import threading
import time


def _tree_rss_bytes(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(name)] = int(fields[1])
            rss[int(name)] = int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(p for p, pp in parents.items() if pp == pid)
    return total


class PeakMemory:
    """Context manager: ``with PeakMemory() as m: ...; m.peak_mb``."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak = _tree_rss_bytes(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def timed(fn, *args, **kwargs):
    """Run ``fn``; return (result, seconds, peak_mb)."""
    with PeakMemory() as mem:
        t0 = time.time()
        result = fn(*args, **kwargs)
        seconds = time.time() - t0
    return result, round(seconds, 2), mem.peak_mb
