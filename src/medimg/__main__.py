"""`python -m medimg …`: the `medimg` command, where its script is not on PATH."""

from .cli import app

app(prog_name="medimg")
