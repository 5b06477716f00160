"""The one timing rule every benchmark here uses: the best of `repeat` wall-clock runs."""

import time


def timed(fn, repeat: int = 3) -> float:
    """Seconds of the fastest of `repeat` calls of `fn()` (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
