"""Phase 1 of the benchmark: index build in a subprocess, its peak RSS sampled from outside.

With the semantic signal (the default, as ``admatch index build`` runs with ``ADMATCH_SEMANTIC``
on) a size is built twice, each in a subprocess of its own: first from an empty vector cache
(*cold*: every distinct ad text encoded), then again over the same ads reading the vector cache
the first build left under the index root (*warm*: nothing encoded), as the nightly rebuild of an
unchanged catalog does. The vectors are found as ``service.serving.indexing.catalog_vectors``
finds them (vector cache, then encoded; there is no Redis here, so nothing comes from uploads),
in steps timed apart.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.common import BENCH, proc_status, sub_json

PROGRESS_EVERY = 50_000  # ads segmented or texts encoded between progress lines


def _progress(stage: str, done: int, t0: float) -> None:
    print(json.dumps({"progress": done, "stage": stage, "elapsed_s": round(time.perf_counter() - t0, 1)}),
          flush=True)


def ad_vectors(ads: list[Any], root: Path, t0: float) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The encoder and the ads' raw vectors, as ``catalog_vectors`` gets them (vector cache under
    ``root``, the rest encoded by ``index.encoding.encode_texts``; the cache then replaced), and
    what each step took."""
    from index.encoding import encode_texts
    from index.vector_cache import VectorCache
    from matching.encoder import default_encoder
    from matching.semantic import ad_text, text_key

    encoder = default_encoder()
    t = time.perf_counter()
    encoder.load()  # apart from the encoding: about 1 s, once a build
    a = time.perf_counter()
    texts = [ad_text(ad) for ad in ads]
    names = [text_key(encoder.name, t) for t in texts]
    b = time.perf_counter()
    cache = VectorCache.load(root, encoder.name, encoder.dim)
    held, rows = cache.lookup(names)
    cached = len(cache)
    del cache
    missing = np.flatnonzero(~held)
    todo = [texts[i] for i in missing]
    c = time.perf_counter()
    done = 0

    def tick(n: int) -> None:  # progress lines let a killed build be extrapolated
        nonlocal done
        before, done = done, done + n
        if done // PROGRESS_EVERY > before // PROGRESS_EVERY:
            _progress("encoding", done, t0)

    if todo:
        rows[missing] = encode_texts(todo, encoder, tick)
    d = time.perf_counter()
    VectorCache.of(names, rows).save(root, encoder.name)
    e = time.perf_counter()
    vdir = root / "vectors"
    encoded = len(set(todo))
    return encoder, rows, {
        "texts": len(set(texts)), "encoder_load_s": round(a - t, 2), "cache_held": cached, "ads_from_cache": int(held.sum()), "encoded": encoded,
        "texts_s": round(b - a, 2), "cache_read_s": round(c - b, 2), "encode_s": round(d - c, 2),
        "texts_per_s": round(encoded / (d - c), 1) if encoded else None, "cache_write_s": round(e - d, 2),
        "vectors_s": round(e - t, 2), "cache_mb": round(sum(p.stat().st_size for p in vdir.iterdir()) / 2**20, 1)}


def phase_build(size: int, seed: int, index_dir: Path, semantic: bool = True) -> dict[str, Any]:
    from bench_catalog import generate

    from index import artifact, builder

    t = time.perf_counter()
    ads = list(generate(size, seed))
    gen_s = time.perf_counter() - t
    rss_before = proc_status()["rss_mb"]
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    kids0 = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])

    def progress(items: Any) -> Iterator[Any]:
        nonlocal done
        for ad in items:
            done += 1
            if done % PROGRESS_EVERY == 0:
                _progress("segmenting", done, t0)
            yield ad

    vec: dict[str, Any] | None = None
    vectors = None
    if semantic:
        encoder, raw, vec = ad_vectors(ads, index_dir, t0)
        vectors = (encoder, raw)
        del raw
    tb = time.perf_counter()
    catalog = builder.build(ads, progress=progress, semantic=vectors)
    del vectors
    t1 = time.perf_counter()
    manifest = artifact.save(catalog, index_dir)
    t2, c2 = time.perf_counter(), time.process_time()
    # the build's worker processes (index.builder segments, index.encoding encodes in forked
    # workers): their CPU time counts, and their peak RSS is reported beside this process's (they
    # share its pages until they write, so the two do not simply add up)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    vdir = index_dir / "versions" / manifest.version
    disk = sum(p.stat().st_size for p in vdir.iterdir())
    out = {"size": size, "version": manifest.version, "generate_s": round(gen_s, 2), "build_s": round(t1 - tb, 2),
           "save_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
           "cpu_s": round(c2 - c0 + kids.ru_utime + kids.ru_stime - kids0, 2),
           "workers_peak_rss_mb": kids.ru_maxrss // 1024, "rss_before_build_mb": rss_before,
           "peak_rss_mb": proc_status()["hwm_mb"], "vocabulary": manifest.vocabulary_size,
           "dense_dim": manifest.dense_dim, "faiss_index": manifest.faiss_index, "disk_mb": round(disk / 2**20, 1),
           "semantic": manifest.semantic}
    if vec is not None:
        out["vectors"] = vec
        out["semantic_mb"] = round((vdir / "semantic.npz").stat().st_size / 2**20, 1)
    return out


def run_build(size: int, seed: int, index_dir: Path, timeout: float, log: Path, semantic: bool = True) -> dict[str, Any]:
    """The build phase: with ``semantic`` a cold build (no vector cache under ``index_dir``) and a
    warm rebuild reading its cache, each in a subprocess; returns the warm build's figures (its
    version is the one published; ``mode`` "warm") with the cold build's under ``cold``, or the
    cold build's alone (``mode`` "cold") when it failed. Without, one build (``mode`` "lexical")."""
    shutil.rmtree(index_dir, ignore_errors=True)
    first = _build_process(size, seed, index_dir, timeout, log, semantic)
    first["mode"] = "cold" if semantic else "lexical"
    if not semantic or first.get("failed"):
        return first
    warm = _build_process(size, seed, index_dir, timeout, log.with_suffix(".warm.log"), semantic)
    warm.update(mode="warm", cold=first)
    if not warm.get("failed"):  # the cold build's version is not served: its disk is given back
        shutil.rmtree(index_dir / "versions" / first["version"], ignore_errors=True)
    return warm


def _build_process(size: int, seed: int, index_dir: Path, timeout: float, log: Path, semantic: bool) -> dict[str, Any]:
    """One build in a subprocess, its peak RSS sampled from here; killed after ``timeout``."""
    cmd = [sys.executable, str(BENCH), "--phase", "build", "--size", str(size), "--seed", str(seed),
           "--index-dir", str(index_dir)] + ([] if semantic else ["--no-semantic"])
    t = time.monotonic()
    with log.open("w") as err:
        # a session of its own, so a build stopped at the limit takes its forked workers with it
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
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
            os.killpg(proc.pid, signal.SIGKILL)
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
