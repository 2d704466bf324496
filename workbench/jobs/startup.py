"""Start-up time of job processes (the ``workbench`` job commands and sweep workers)."""

from __future__ import annotations

import sys


def skip_unused_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` in this process.

    nbformat validates notebooks with jsonschema, whose format checker imports the optional
    ``rfc3987_syntax`` when it is installed; building that package's grammar costs 1-2 s per
    process, for IRI checks that notebook schemas never use. Only job processes call this.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
