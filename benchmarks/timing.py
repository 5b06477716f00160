"""The timing rules the benchmarks here use: the best of `repeat` wall-clock runs, or on a shared machine the
median CPU time of `repeat` runs."""

import statistics
import time


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
