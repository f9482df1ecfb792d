"""``python -m ingot.cli``: the same command line as the ``ingot`` script."""

from ingot.cli import app

app()
