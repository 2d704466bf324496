"""Doctest collection for the package: every ``>>>`` example under ``workbench/`` runs."""

# Entry points run a server or the CLI when imported as ``__main__``; they hold no examples.
collect_ignore_glob = ["__main__.py", "*/__main__.py"]
