"""``python -m condorcof`` runs the command-line interface."""

from condorcof.cli import main

main()
