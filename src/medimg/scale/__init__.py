"""Many inputs at once: a Ray Data job over the same pipeline (`pip install medimg[scale]`)."""
