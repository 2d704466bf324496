"""Where the pods of a study on Kubernetes find its storage, without a password in any manifest.

``--storage`` with ``--backend k8s`` takes one of:

- nothing: the study's journal in the owner's own folder of the shared runs volume (the default);
- ``secret-ref:NAME`` or ``secret-ref:NAME/KEY``: a Kubernetes Secret whose key (default :data:`DEFAULT_KEY`)
  holds the Optuna storage URL; the pods read it through ``env.valueFrom.secretKeyRef``, and the
  job gateway accepts only Secrets the profile allows (``secrets:`` in the profiles file);
- a database URL without credentials (``postgresql://db.example/optuna``), kept as it is.

A URL with a password, a file path or a ``sqlite`` URL is refused: a password would be written into
the Job for anyone who may read it, and the only file system the pods share is the runs volume,
where the study's journal already lives in the owner's folder. No message here repeats the URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..k8s_manifest import DNS_SUBDOMAIN

STORAGE_ENV = "WORKBENCH_TUNE_STORAGE"  # what `workbench tune` reads when --storage is left out
SECRET_PREFIX = "secret-ref:"
DEFAULT_KEY = "url"
MAX_URL = 2048
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_DATABASE = re.compile(r"^(postgres|postgresql|mysql|mariadb|oracle|mssql|cockroachdb)(\+[a-z0-9_]+)?$")
_SECRET_WORDS = re.compile(r"(?i)pass|pwd|secret|token|key|credential")
_HOW = "put the URL in a Kubernetes Secret and pass --storage secret-ref:NAME[/KEY] (the key defaults to 'url')"


@dataclass(frozen=True)
class StorageRef:
    """A study's storage as the pods receive it: a Secret's key, or a URL without credentials."""

    secret: str = ""
    key: str = DEFAULT_KEY
    url: str = ""

    def to_json(self) -> dict[str, str]:
        """The ``tune.storage`` field of a gateway request."""
        return {"secret": self.secret, "key": self.key} if self.secret else {"url": self.url}

    def env(self) -> dict[str, Any]:
        """The container's :data:`STORAGE_ENV` entry (the Secret's key, never its value)."""
        if self.secret:
            return {"name": STORAGE_ENV, "valueFrom": {"secretKeyRef": {"name": self.secret, "key": self.key}}}
        return {"name": STORAGE_ENV, "value": self.url}

    def describe(self) -> str:
        """What to print: the Secret and key, or the URL (it holds no credentials)."""
        return f"secret {self.secret}, key {self.key}" if self.secret else self.url

    def __repr__(self) -> str:
        return f"StorageRef({self.describe()})"


def check_storage_url(url: Any) -> str:
    """``url`` when it is a database URL the pods may receive in clear, else ``ValueError`` (without the URL).

    Examples
    --------
    >>> check_storage_url("postgresql://db.internal:5432/optuna")
    'postgresql://db.internal:5432/optuna'
    >>> check_storage_url("postgresql://ana:hunter2@db/optuna")
    Traceback (most recent call last):
    ...
    ValueError: the storage URL holds a password, which would be written into the Job ...
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"the storage URL must be one line of at most {MAX_URL} characters without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError("the storage URL cannot be read (its host or port is malformed)") from None
    has_password = parts.password is not None or any(_SECRET_WORDS.search(k) for k, _ in parse_qsl(parts.query))
    if has_password:
        raise ValueError(
            "the storage URL holds a password, which would be written into the Job for anyone who may "
            f"read it; with --backend k8s {_HOW}"
        )
    scheme = parts.scheme.lower()
    if "://" not in url or scheme in ("sqlite", "file") or scheme.startswith("sqlite+"):
        raise ValueError(
            "with --backend k8s a storage file (sqlite, a journal) could only live on the shared runs volume, "
            "where the study's journal is kept in your own folder already: leave out --storage for it, or name "
            "a database server (postgresql://HOST/DB)"
        )
    if not _DATABASE.match(scheme) or not parts.hostname:
        raise ValueError(
            f"the storage URL must name a database server, such as postgresql://HOST/DB or mysql://HOST/DB "
            f"(got scheme {scheme!r}{'' if parts.hostname else ' without a host'})"
        )
    return url


def storage_ref(text: str) -> StorageRef:
    """The :class:`StorageRef` of a ``--storage`` value for ``--backend k8s``.

    Examples
    --------
    >>> storage_ref("secret-ref:optuna-db/dsn")
    StorageRef(secret optuna-db, key dsn)
    >>> storage_ref("secret-ref:optuna-db").key
    'url'
    """
    if text.startswith(SECRET_PREFIX):
        name, _, key = text[len(SECRET_PREFIX) :].partition("/")
        return parse_storage({"secret": name, "key": key or DEFAULT_KEY})
    return StorageRef(url=check_storage_url(text))


def parse_storage(data: Any) -> StorageRef | None:
    """A :class:`StorageRef` from a request's ``tune.storage`` (``None``: the default journal), or ``ValueError``."""
    if data is None:
        return None
    if not isinstance(data, Mapping) or set(data) not in ({"secret"}, {"secret", "key"}, {"url"}):
        raise ValueError('tune.storage must be {"secret": NAME, "key": KEY} or {"url": URL}, and nothing else')
    if "url" in data:
        return StorageRef(url=check_storage_url(data["url"]))
    name, key = data["secret"], data.get("key", DEFAULT_KEY)
    if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise ValueError(
            f"storage secret {name!r} is not a Kubernetes Secret name (lowercase letters, digits, '-', '.')"
        )
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"storage secret key {key!r} must be 1-253 letters, digits, '-', '_' or '.'")
    return StorageRef(secret=name, key=key)
