"""The job gateway: the hub service through which users submit Kubernetes Jobs (their pods hold no API rights).

:mod:`.policy` holds the checks and the submit scope, :mod:`.app` the tornado application,
:mod:`.service` the entry point (``python -m workbench.hub.gateway``).
"""

from .policy import SUBMIT_SCOPE, Refused

__all__ = ["SUBMIT_SCOPE", "Refused"]
