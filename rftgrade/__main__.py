"""``python -m rftgrade`` runs the CLI."""

from rftgrade.cli import main

main()
