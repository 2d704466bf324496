"""GPU utilisation sources for the culler: ``nvidia-smi`` locally, Prometheus (DCGM exporter) on Kubernetes.

A source is any object with ``async utilisation(server: GpuServer) -> float | None`` (percent,
averaged over the server's GPUs; ``None`` when unknown). :func:`metrics_from_config` builds one from
the ``culling.gpu.metrics`` mapping of the profiles file; ``source: package.module:Class`` plugs in
your own (keyword arguments are the mapping's other keys).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

DCGM_QUERY = 'avg(DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}",pod="{pod}"}})'


@dataclass(frozen=True)
class GpuServer:
    """What the culler knows of one running server (from the hub API)."""

    user: str
    name: str = ""
    profile: str = ""
    gpus: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``user/name`` (``user/`` for the default server)."""
        return f"{self.user}/{self.name}"


class GpuMetrics(Protocol):
    async def utilisation(self, server: GpuServer) -> float | None: ...


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class NvidiaSmiMetrics:
    """Local GPUs: ``nvidia-smi`` utilisation of the devices the local spawner gave the server.

    The devices are the server's ``gpu_devices`` (indices or UUIDs, as in ``CUDA_VISIBLE_DEVICES``).
    """

    def __init__(self, command: str = "nvidia-smi", timeout: float = 20.0) -> None:
        self.command = command
        self.timeout = timeout

    async def read(self) -> dict[str, float]:
        """Utilisation per device, keyed by both index and UUID."""
        exe = shutil.which(self.command)
        if exe is None:
            raise RuntimeError(
                f"{self.command!r} not found; install the NVIDIA driver utilities or pick another metrics source"
            )
        proc = await asyncio.create_subprocess_exec(
            exe,
            "--query-gpu=index,uuid,utilization.gpu",
            "--format=csv,noheader,nounits",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        if proc.returncode:
            raise RuntimeError(f"nvidia-smi failed ({proc.returncode}): {err.decode(errors='replace').strip()}")
        return parse_nvidia_smi(out.decode())

    async def utilisation(self, server: GpuServer) -> float | None:
        devices = [str(d) for d in server.state.get("gpu_devices") or []]
        if not devices:
            return None
        table = await self.read()
        return _mean([table[d] for d in devices if d in table])


def parse_nvidia_smi(text: str) -> dict[str, float]:
    """``index, uuid, utilization.gpu`` CSV lines into ``{index: util, uuid: util}``."""
    table: dict[str, float] = {}
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            util = float(parts[2])
        except ValueError:  # "[N/A]" on GPUs that do not report utilisation
            continue
        table[parts[0]] = table[parts[1]] = util
    return table


def _promql_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusMetrics:
    """Kubernetes: a Prometheus instant query of the NVIDIA DCGM exporter for the server's pod.

    ``query`` is formatted with the PromQL-escaped ``pod``, ``namespace``, ``user`` and ``server``.
    """

    def __init__(self, url: str, query: str = DCGM_QUERY, timeout: float = 20.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus url must be http(s)://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.query = query
        self.timeout = timeout

    def promql(self, server: GpuServer) -> str:
        labels = {
            "pod": server.state.get("pod_name", ""),
            "namespace": server.state.get("namespace", ""),
            "user": server.user,
            "server": server.name,
        }
        return self.query.format(**{k: _promql_label(str(v)) for k, v in labels.items()})

    async def utilisation(self, server: GpuServer) -> float | None:
        from tornado.httpclient import AsyncHTTPClient

        if not server.state.get("pod_name"):
            return None
        url = f"{self.url}/api/v1/query?{urlencode({'query': self.promql(server)})}"
        response = await AsyncHTTPClient().fetch(url, request_timeout=self.timeout)
        return parse_prometheus(json.loads(response.body))


def parse_prometheus(body: dict[str, Any]) -> float | None:
    """Mean of the sample values of an instant-query answer (``None`` for an empty result)."""
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {body.get('error', body)}")
    result = body.get("data", {}).get("result", [])
    return _mean([float(item["value"][1]) for item in result])


class FileMetrics:
    """Utilisation from a JSON file ``{"user/server": percent}`` (``user/`` is the default server).

    For exporters that write a file, and for tests: the file is read at every check.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def utilisation(self, server: GpuServer) -> float | None:
        try:
            table = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        value = table.get(server.key)
        return None if value is None else float(value)


class StaticMetrics:
    """The same utilisation for every server (or ``None``: unknown)."""

    def __init__(self, value: float | None) -> None:
        self.value = value

    async def utilisation(self, server: GpuServer) -> float | None:
        return self.value


_SOURCES = {
    "nvidia-smi": NvidiaSmiMetrics,
    "prometheus": PrometheusMetrics,
    "file": FileMetrics,
    "static": StaticMetrics,
}


def metrics_from_config(config: dict[str, Any], mode: str = "local") -> GpuMetrics:
    """A metrics source from ``{source: ..., **kwargs}``; ``auto`` picks by hub mode.

    Examples
    --------
    >>> metrics = metrics_from_config({"source": "prometheus", "url": "http://prometheus.monitoring:9090"})
    >>> type(metrics).__name__
    'PrometheusMetrics'
    """
    options = dict(config)
    source = str(options.pop("source", "auto"))
    if source == "auto":
        source = "prometheus" if mode == "kubernetes" else "nvidia-smi"
        if source == "prometheus":
            options.setdefault("url", "http://prometheus-server.monitoring.svc.cluster.local")
    if ":" in source:
        module, _, name = source.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"metrics source {source!r} cannot be imported: {exc}") from exc
    elif source in _SOURCES:
        cls = _SOURCES[source]
    else:
        raise ValueError(f"unknown metrics source {source!r}; use one of {sorted(_SOURCES)}, auto, or module:Class")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"metrics source {source!r}: bad options {sorted(options)}: {exc}") from exc
