"""Main script of the installed app (``bench-workbench app`` runs it); ``pages/`` is beside it."""

from bench.app.main import main

main()
