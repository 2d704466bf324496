"""Shared timing and reporting for the benchmarks: best-of-N wall time and a ratio to the peer.

Every benchmark script runs ours and the named peer in the same process and prints
``RATIO <name> ours=<s> peer=<s> ratio=<ours/peer> target=<op><value> <PASS|MISS>`` lines,
so results are comparable only within one run on one machine.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    best: float
    runs: list[float]
    value: Any = None


def measure(fn: Callable[[], Any], repeat: int = 3, warmup: int = 0) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times; keep the best wall time."""
    value = None
    for _ in range(warmup):
        value = fn()
    runs = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - start)
    return Timing(best=min(runs), runs=runs, value=value)


def report(name: str, ours: float, peer: float, peer_name: str, target: str | None = None) -> bool:
    """Print one ratio line; ``target`` like ``"<=0.8"`` (ours/peer) or ``">=10"`` (peer/ours speed-up)."""
    ratio = ours / peer if peer else float("inf")
    speedup = peer / ours if ours else float("inf")
    ok = True
    if target:
        op, value = (target[:2], float(target[2:]))
        ok = ratio <= value if op == "<=" else speedup >= value
    verdict = "" if not target else (" PASS" if ok else " MISS")
    print(
        f"RATIO {name}: ours={ours:.4f}s {peer_name}={peer:.4f}s time-ratio={ratio:.3f} "
        f"speedup={speedup:.2f}x" + (f" target {target}" if target else "") + verdict,
        flush=True,
    )
    return ok


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs, times mean nothing")
    return p


def header(title: str) -> None:
    print(
        f"== {title} | python {platform.python_version()} | {platform.machine()} | {__import__('os').cpu_count()} cpus",
        flush=True,
    )
