"""The timing rules the benchmarks here use: the best of `repeat` wall-clock runs, or on a shared machine the
median CPU time of `repeat` runs (`clocks` gives both)."""

import statistics
import time
from typing import NamedTuple


def timed(fn, repeat: int = 3) -> float:
    """Seconds of the fastest of `repeat` calls of `fn()` (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cpu(fn, repeat: int, warm: bool = False) -> float:
    """Median CPU seconds of `repeat` calls of `fn()` (after one call not counted, with `warm`)."""
    if warm:
        fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


class Clocks(NamedTuple):
    cpu: float  # median CPU seconds (all threads): steady on a machine shared with other work
    wall: float  # the fastest wall-clock seconds: what a caller waits on a quiet machine
    spread: float  # the slowest CPU time over the fastest


def clocks(fn, repeat: int = 3) -> Clocks:
    """Both clocks over the same `repeat` calls of `fn()`, after one call not counted (imports, first-use caches).
    Compare CPU times: on a loaded machine the wall clock of a niced run swings several times over."""
    fn()
    cpus, walls = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - start_cpu)
        walls.append(time.perf_counter() - start)
    return Clocks(statistics.median(cpus), min(walls), max(cpus) / max(min(cpus), 1e-9))


def ms(c: Clocks) -> str:
    """'12.3 ms (15.0)': the CPU time, the fastest wall clock in brackets."""
    return f"{c.cpu * 1000:7.1f} ms ({c.wall * 1000:.1f})"
