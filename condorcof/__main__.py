"""``python -m condorcof`` runs the command-line interface."""

from condorcof.cli import main

if __name__ == "__main__":
    main()
