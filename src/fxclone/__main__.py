"""``python -m fxclone`` runs the command-line interface."""

from fxclone.cli import main

main()
