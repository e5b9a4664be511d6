"""``python -m matcher.cli`` runs the ``matcher`` command."""

from matcher.cli import main

main()
