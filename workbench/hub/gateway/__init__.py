"""The job gateway: the hub service through which users submit Kubernetes Jobs (their pods hold no API rights).

:mod:`.parsing` reads a request body, :mod:`.policy` holds the checks and the submit scope,
:mod:`.app` the tornado application, :mod:`.service` the entry point (``python -m workbench.hub.gateway``).
"""

from .parsing import Refused
from .policy import SUBMIT_SCOPE

__all__ = ["SUBMIT_SCOPE", "Refused"]
