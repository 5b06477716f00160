"""Reading a CLI's output in tests."""

import re


def flat(output: str) -> str:
    """The words of a command's output, with rich's boxes and line wrapping taken out (a long path wraps a
    message at a different word on every machine)."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())
