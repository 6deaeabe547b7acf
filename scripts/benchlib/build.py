"""Phase 1 of the benchmark: index build in a subprocess, its peak RSS sampled from outside."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchlib.common import BENCH, proc_status, sub_json


def phase_build(size: int, seed: int, index_dir: Path) -> dict[str, Any]:
    from bench_catalog import generate

    from index import artifact, builder

    t = time.perf_counter()
    ads = list(generate(size, seed))
    gen_s = time.perf_counter() - t
    rss_before = proc_status()["rss_mb"]
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    kids0 = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])

    def progress(items: Any) -> Iterator[Any]:  # progress lines let a killed build be extrapolated
        nonlocal done
        for ad in items:
            done += 1
            if done % 50_000 == 0:
                print(json.dumps({"progress": done, "elapsed_s": round(time.perf_counter() - t0, 1)}), flush=True)
            yield ad

    catalog = builder.build(ads, progress=progress)
    t1 = time.perf_counter()
    manifest = artifact.save(catalog, index_dir)
    t2, c2 = time.perf_counter(), time.process_time()
    # the build's worker processes (index.builder segments in forked workers): their CPU time
    # counts, and their peak RSS is reported beside this process's (they share its pages until
    # they write, so the two do not simply add up)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    vdir = index_dir / "versions" / manifest.version
    disk = sum(p.stat().st_size for p in vdir.iterdir())
    return {"size": size, "generate_s": round(gen_s, 2), "build_s": round(t1 - t0, 2), "save_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2), "cpu_s": round(c2 - c0 + kids.ru_utime + kids.ru_stime - kids0, 2),
            "workers_peak_rss_mb": kids.ru_maxrss // 1024, "rss_before_build_mb": rss_before, "peak_rss_mb": proc_status()["hwm_mb"],
            "vocabulary": manifest.vocabulary_size, "dense_dim": manifest.dense_dim,
            "faiss_index": manifest.faiss_index, "disk_mb": round(disk / 2**20, 1)}


def run_build(size: int, seed: int, index_dir: Path, timeout: float, log: Path) -> dict[str, Any]:
    """The build phase in a subprocess, its peak RSS sampled from here; killed after ``timeout``."""
    cmd = [sys.executable, str(BENCH), "--phase", "build", "--size", str(size), "--seed", str(seed),
           "--index-dir", str(index_dir)]
    t = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        lines: list[str] = []
        hwm = 0

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        while proc.poll() is None and time.monotonic() - t < timeout:
            hwm = max(hwm, proc_status(proc.pid)["hwm_mb"])
            time.sleep(0.5)
        if proc.poll() is None:
            hwm = max(hwm, proc_status(proc.pid)["hwm_mb"])
            proc.kill()
            proc.wait()
            th.join(5)
            prog = [json.loads(x) for x in lines if x.startswith('{"progress"')]
            return {"size": size, "failed": f"build stopped after {timeout:.0f} s (limit)", "peak_rss_mb": hwm,
                    "progress": prog[-1] if prog else None, "wall_s": round(time.monotonic() - t, 1)}
        th.join(5)
    if proc.returncode != 0:
        return {"size": size, "failed": f"build exited {proc.returncode}: {log.read_text()[-500:]}"}
    out = sub_json("".join(lines))
    out["peak_rss_mb"] = max(out["peak_rss_mb"], hwm)
    out["wall_s"] = round(time.monotonic() - t, 1)
    return out

