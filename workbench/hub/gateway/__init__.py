"""The job gateway: the hub service through which users submit Kubernetes Jobs (their pods hold no API rights)."""

from .app import Gateway, make_app
from .policy import SUBMIT_SCOPE, Refused

__all__ = ["SUBMIT_SCOPE", "Gateway", "Refused", "make_app"]
