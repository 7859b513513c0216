"""Peak memory of this process and its children (the Spark JVM, Python workers), sampled.

Memory is the proportional set size (PSS, psutil's ``memory_full_info().pss``, which
Linux reports in ``/proc/<pid>/smaps_rollup``): a page shared by several processes
(forked Python workers, libraries, page cache mapped by more than one process) counts
once in the sum, split between them. Summing plain RSS over the tree counts such pages
once per process and can exceed the machine's physical memory. Where PSS cannot be read
(another user's process, a platform without it), RSS is the fallback.

The anonymous part (heaps, the JVM's among them) is tracked too, as resident memory that
is neither file-backed nor shared memory (psutil's ``rss - shared``, Linux's
``RssAnon``): the rest is files mapped into memory (libraries, memory-mapped shuffle
blocks), pages the kernel can drop. Unlike the PSS total it is not split between
processes: copy-on-write pages that forked Python workers still share with their parent
count once per worker, so it can overstate by those.

Reading PSS walks the process's page tables, so a sample costs CPU in proportion to the
memory it measures: 0.14-0.21 s on average for a Spark JVM of 8-13 GB. Taken every
0.5 s, the samples used about 30% of one of the two cores and made the features job at
1M personas 1.09-1.11x slower than unobserved. So the sampler keeps to a CPU budget
(:data:`SAMPLER_BUDGET`, see :func:`pause_after`): the pause after a sample grows with
the time the sample took.
"""

from __future__ import annotations

import os
import threading
import time

import psutil


def _process_memory(proc: psutil.Process) -> tuple[int, int] | None:
    """(PSS, anonymous resident) bytes of ``proc`` (RSS for PSS where PSS is unreadable); None: it is gone."""
    try:
        try:
            info = proc.memory_full_info()
            total = info.pss
        except psutil.AccessDenied:
            info = proc.memory_info()
            total = info.rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return total, max(0, info.rss - getattr(info, "shared", 0))


def tree_memory(root: int) -> tuple[int, int]:
    """(PSS, anonymous resident memory) summed over ``root`` and its descendants, in bytes."""
    try:
        parent = psutil.Process(root)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = anon = 0
    for proc in procs:
        sample = _process_memory(proc)
        if sample is not None:
            total += sample[0]
            anon += sample[1]
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
            f"{self.samples} samples; anonymous resident (heaps, not mapped files) at most {self.peak_anon_mb:.0f} MB"
        )

    @property
    def peak_anon_mb(self) -> float:
        """The highest anonymous resident memory seen (not always at the same moment as :attr:`peak_mb`)."""
        return round(self.peak_anon / 2**20, 1)


def timed_memory(fn, *args, **kwargs):
    """Run ``fn``; return (result, seconds, the :class:`PeakMemory` of the run)."""
    with PeakMemory() as mem:
        t0 = time.time()
        result = fn(*args, **kwargs)
        seconds = time.time() - t0
    return result, round(seconds, 2), mem
