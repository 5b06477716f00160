"""Reading a CLI's output in tests."""

import re


def flat(output: str) -> str:
    """The words of a command's output, with rich's boxes and line wrapping taken out (a long path wraps a
    message at a different word on every machine)."""
    text = " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())
    return re.sub(r" (?=[:;,)])", "", text)  # a wrap just before punctuation (a long path, then ": …")


def unspaced(output: str) -> str:
    """`flat` without any white space: for a message that rich may wrap just before its punctuation (a path
    ending a line, then `: could not…`), compared with the message's own text unspaced."""
    return "".join(flat(output).split())
