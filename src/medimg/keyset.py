"""A set of strings for lists of millions: each key kept as its 16-byte BLAKE2b digest in sorted NumPy runs,
about 16 bytes a key where a Python set of str takes ~130. Keys are added and looked up many at a time.

Two different keys share a digest with a chance of about n² / 2¹²⁹ (10⁻²⁵ for ten million keys).
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Sequence

import numpy as np

DIGEST = np.dtype("S16")  # compared byte by byte over all 16 bytes, NULs included


def digests(keys: Sequence[str]) -> np.ndarray:
    """The keys' digests, in order (any str: lone surrogates of undecodable names included)."""
    joined = b"".join(blake2b(k.encode("utf-8", "surrogatepass"), digest_size=16).digest() for k in keys)
    return np.frombuffer(joined, dtype=DIGEST).copy()


class KeySet:
    """Sorted runs of unique digests; a run is merged into the one before it once that is at most twice its
    size, so there are about log₂(n) runs and each digest is copied about log₂(n) times in all."""

    def __init__(self, keys: Sequence[str] = ()):
        self.runs: list[np.ndarray] = []
        if len(keys):
            self.add_new(keys)

    @classmethod
    def of_digests(cls, d: np.ndarray) -> "KeySet":
        """A set of these digests (unique, sorted)."""
        out = cls()
        if len(d):
            out.runs.append(d)
        return out

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def contains(self, keys: Sequence[str]) -> np.ndarray:
        """One bool per key: whether it is in the set."""
        return self._has(digests(keys))

    def __contains__(self, key: str) -> bool:
        return bool(self.contains([key])[0])

    def add_new(self, keys: Sequence[str]) -> np.ndarray:
        """Add the keys; one bool per key: True where it was not in the set nor earlier in `keys`."""
        d = digests(keys)
        uniq, first = np.unique(d, return_index=True)
        fresh = ~self._has(uniq)
        new = np.zeros(len(d), dtype=bool)
        new[first[fresh]] = True
        if fresh.any():
            self._push(uniq[fresh])
        return new

    def _has(self, d: np.ndarray) -> np.ndarray:
        found = np.zeros(len(d), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, d), len(run) - 1)
            found |= run[at] == d
        return found

    def _push(self, run: np.ndarray) -> None:
        # merged in a new list, put in place at once: a look-up from another thread (classify --resume's `done`,
        # asked by the threads reading nested archives while a key is added) never sees a run taken out
        runs = [*self.runs, run]
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            merged = np.concatenate(runs[-2:])  # at most twice the set's size while merging
            del runs[-2:]
            merged.sort()
            runs.append(merged)
        self.runs = runs
