"""Peak memory of this process and its children (the Spark JVM, Python workers), sampled.

Memory is the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``): a page shared by
several processes (forked Python workers, libraries, page cache mapped by more than one
process) counts once in the sum, split between them. Summing plain RSS over the tree counts
such pages once per process and can exceed the machine's physical memory. Where
``smaps_rollup`` cannot be read, RSS from ``/proc/<pid>/stat`` is the fallback.

The anonymous part of it (``Pss_Anon``: heaps, the JVM's among them) is tracked too: the
rest is files mapped into memory (libraries, memory-mapped shuffle blocks), pages the
kernel can drop.

Reading ``smaps_rollup`` walks the process's page tables, so a sample costs CPU in
proportion to the memory it measures: 0.14-0.21 s on average for a Spark JVM of 8-13 GB.
Taken every 0.5 s, the samples used about 30% of one of the two cores and made the
features job at 1M personas 1.09-1.11x slower than unobserved. So the sampler keeps to
a CPU budget (:data:`SAMPLER_BUDGET`, see :func:`pause_after`): the pause after a
sample grows with the time the sample took.
"""

from __future__ import annotations

import os
import threading
import time


def _pss_bytes(pid: int) -> tuple[int, int] | None:
    """(PSS, anonymous PSS) of ``pid`` in bytes, or None where smaps_rollup cannot be read."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith(("Pss:", "Pss_Anon:")):
                    name, value = line.split()[:2]
                    fields[name] = int(value) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if "Pss:" not in fields:
        return None
    return fields["Pss:"], fields.get("Pss_Anon:", fields["Pss:"])


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, RSS bytes) for every readable process."""
    page = os.sysconf("SC_PAGE_SIZE")
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            table[int(name)] = (int(fields[1]), int(fields[21]) * page)
        except (OSError, IndexError, ValueError):
            continue
    return table


def _tree(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, []))
    return seen


def tree_memory(root: int) -> tuple[int, int]:
    """(PSS, anonymous PSS) summed over ``root`` and its descendants (RSS where PSS is unreadable)."""
    table = _process_table()
    total = anon = 0
    for pid in _tree(root, table):
        pss = _pss_bytes(pid)
        if pss is None:
            rss = table.get(pid, (0, 0))[1]
            pss = (rss, rss)
        total += pss[0]
        anon += pss[1]
    return total, anon


# The share of one core the sampler may use.
SAMPLER_BUDGET = 0.05


def pause_after(sample_seconds: float, interval: float, budget: float = SAMPLER_BUDGET) -> float:
    """Seconds to wait after a sample that took ``sample_seconds``: at least ``interval``.

    Sampling for ``s`` seconds then pausing ``s * (1 - budget) / budget`` uses at most
    ``budget`` of one core.
    """
    return max(interval, sample_seconds * (1.0 - budget) / budget)


class PeakMemory:
    """Context manager: ``with PeakMemory() as m: ...; m.peak_mb``.

    Samples every ``interval`` seconds, or less often where a sample is slow (see
    :func:`pause_after`); ``samples`` counts them.
    """

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.peak = 0
        self.peak_anon = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        """Take one sample; return the seconds it took."""
        t0 = time.perf_counter()
        total, anon = tree_memory(os.getpid())
        self.peak = max(self.peak, total)
        self.peak_anon = max(self.peak_anon, anon)
        self.samples += 1
        return time.perf_counter() - t0

    def _run(self) -> None:
        while not self._stop.is_set():
            took = self._sample()
            self._stop.wait(pause_after(took, self.interval))

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)

    def describe(self) -> str:
        """What the peak is, for a benchmark row's notes."""
        return (
            "PSS summed over the python driver, the Spark JVM and its workers, sampled every "
            f"{self.interval:g} s or less often where a sample is slow (at most {SAMPLER_BUDGET:.0%} of a core); "
            f"{self.samples} samples; anonymous (heaps, not mapped files) at most {self.peak_anon_mb:.0f} MB"
        )

    @property
    def peak_anon_mb(self) -> float:
        """The highest anonymous PSS seen (not always at the same moment as :attr:`peak_mb`)."""
        return round(self.peak_anon / 2**20, 1)


def timed_memory(fn, *args, **kwargs):
    """Run ``fn``; return (result, seconds, the :class:`PeakMemory` of the run)."""
    with PeakMemory() as mem:
        t0 = time.time()
        result = fn(*args, **kwargs)
        seconds = time.time() - t0
    return result, round(seconds, 2), mem
