"""``python -m personae`` runs the command line."""

from personae.cli.main import app

app()
