"""Phase 2 of the benchmark: in-process latency, FAISS recall and the bm25s peer (in a subprocess)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.common import BENCH, K, pct, proc_status, sub_json


def phase_inproc(index_dir: Path, pages_file: Path, rounds: int, profile: bool) -> dict[str, Any]:
    import faiss

    from index import artifact
    from matching.analyze import make_page
    from matching.matcher import MatchConfig, Matcher
    from service.app import serving_threads
    from service.serving.blocked import BlockedCache
    from service.serving.index_holder import Snapshot, settle_heap
    from service.serving.page_cache import PageCache, page_key
    from service.serving.placement import relevant

    pages = json.loads(pages_file.read_text(encoding="utf-8"))
    threads = faiss.omp_get_max_threads()  # FAISS's default, for the dense-search comparison below
    serving_threads()  # as `admatch serve` runs: FAISS on one OpenMP thread
    rss0 = proc_status()["rss_mb"]
    t = time.perf_counter()
    manifest, catalog = artifact.load(index_dir)
    load_s = time.perf_counter() - t
    rss_loaded = proc_status()["rss_mb"]
    matcher = Matcher(catalog, MatchConfig())
    settle_heap()  # as the service does after each load: the index out of the cyclic GC's reach

    def page_of(p: dict[str, Any]) -> Any:
        return make_page(title=p["title"], text=p["text"])

    for p in pages[:5]:  # warm-up: first jieba calls, numpy/FAISS first touches
        matcher.rank(matcher.analyze(page_of(p)), K)
    t_norm, t_an, t_rank, t_all, t_cpu, n_results = [], [], [], [], [], []
    qd_rows = []
    for p in pages:
        cpu = time.process_time()
        a = time.perf_counter()
        page = page_of(p)
        b = time.perf_counter()
        terms = matcher.analyze(page)
        c = time.perf_counter()
        ranked = matcher.rank(terms, K)
        d = time.perf_counter()
        t_cpu.append(time.process_time() - cpu)
        t_norm.append(b - a)
        t_an.append(c - b)
        t_rank.append(d - c)
        t_all.append(d - a)
        n_results.append(len(ranked))
        q = catalog.vectorizer.sparse([terms.counts])
        if q.nnz:
            qd_rows.append(catalog.vectorizer.dense(q)[0])

    # cached: the service's page-cache path, local LRU hit + blocked filter (1% of campaigns paused)
    snap = Snapshot.of(manifest, matcher)
    cache = PageCache(None, local_size=100_000, ttl_s=3600)
    blocked = BlockedCache(None)  # type: ignore[arg-type]  # members set here, never refreshed
    cmps = sorted({ad.campaign_id for ad in catalog.ads})
    blocked.members = frozenset(f"cmp:{c}" for c in cmps[:: 100])

    async def cached() -> list[float]:
        out = []
        for r in range(rounds + 1):
            for p in pages:
                a = time.perf_counter()
                key = page_key(url=None, title=p["title"], text=p["text"], html=None)
                await relevant(snap, lambda p=p: page_of(p), key, cache, blocked, 10)
                if r:  # round 0 fills the cache
                    out.append(time.perf_counter() - a)
        return out

    t_cached = asyncio.run(cached())

    # FAISS as used vs exact brute force (numpy), recall@10 and search time at the matcher's depth
    faiss.omp_set_num_threads(threads)
    recall, t_faiss, t_numpy = [], [], []
    n_cand = min(MatchConfig().candidates, len(catalog.ads))
    for qd in qd_rows:
        x = qd.reshape(1, -1)
        a = time.perf_counter()
        catalog.dense.search(x, n_cand)
        t_faiss.append(time.perf_counter() - a)
        _, rows = catalog.dense.search(x, 10)
        a = time.perf_counter()
        sims = catalog.ad_dense @ qd
        np.argpartition(-sims, min(n_cand, len(sims) - 1))[:n_cand]
        t_numpy.append(time.perf_counter() - a)
        exact = set(np.argsort(-sims, kind="stable")[:10].tolist())
        kth = np.sort(sims)[-10]  # ties at the 10th score count as found
        got = [int(r) for r in rows[0] if r >= 0]
        recall.append(sum(1 for r in got if r in exact or sims[r] >= kth - 1e-6) / min(10, len(sims)))

    faiss.omp_set_num_threads(1)
    t_faiss1 = []
    for qd in qd_rows:
        a = time.perf_counter()
        catalog.dense.search(qd.reshape(1, -1), n_cand)
        t_faiss1.append(time.perf_counter() - a)

    prof = profile_rank(matcher, [page_of(p) for p in pages[:60]]) if profile else None
    analysed = analysed_paths(matcher, pages, page_of) if catalog.ad_semantic is not None else None
    bm = bm25s_peer(catalog, pages, page_of)
    sem_mb = round(catalog.ad_semantic.nbytes / 2**20, 1) if catalog.ad_semantic is not None else None
    return {"load_s": round(load_s, 2), "rss_before_load_mb": rss0, "rss_loaded_mb": rss_loaded,
            "index_rss_mb": rss_loaded - rss0, "ads": len(catalog.ads), "semantic_rows_mb": sem_mb,
            "analysed": analysed,
            "uncached": pct(t_all), "uncached_cpu": pct(t_cpu), "stage_p50_ms": {"make_page": pct(t_norm)["p50"], "analyze": pct(t_an)["p50"],
                                                     "rank": pct(t_rank)["p50"]},
            "stages": {"make_page": pct(t_norm), "analyze": pct(t_an), "rank": pct(t_rank)},
            "results_mean": round(float(np.mean(n_results)), 1), "cached": pct(t_cached),
            "faiss": {"index": type(catalog.dense).__name__, "recall_at_10": round(float(np.mean(recall)), 4),
                      "search_k_cand": pct(t_faiss), "search_1_thread": pct(t_faiss1), "numpy_k_cand": pct(t_numpy),
                      "queries": len(recall), "omp_threads": threads},
            "bm25s": bm, "profile": prof}


def short_page(p: dict[str, Any], limit: int) -> dict[str, Any]:
    """A page of at most ``limit`` characters (title + text) made of an article: its title and the
    first sentence of its body (to the first 。！？!? or line end; the body's repeat of the title
    left out), cut to fit — the inline (short-page) path's input."""
    title = (p["title"] or "")[:limit]
    body = p["text"]
    if title and body.startswith(title):
        body = body[len(title):]
    body = body.strip()
    m = _SENTENCE_END.search(body)
    text = (body[:m.end()] if m else body).strip()[:max(0, limit - len(title))]
    from matching.analyze import make_page

    for _ in range(3):  # normalising may lengthen a text (NFKC): cut until the page fits
        page = make_page(title=title or None, text=text)
        over = len(page.title) + len(page.body) - limit
        if over <= 0:
            break
        text = text[:max(0, len(text) - over)]
    return {"title": title or None, "text": text}


_SENTENCE_END = re.compile(r"[。！？!?\n]")


def analysed_paths(matcher: Any, pages: list[dict[str, Any]], page_of: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The request path of a page whose vector is known: *stored* (the analyzer's profile; the
    vectors are computed before the timed loop, as a worker would have) and *inline* (a short
    page, encoded in the request as ``service.analysis.understanding.PageUnderstanding.inline``
    does: ``page_vector`` when title + text ≤ ``inline_analysis_chars``), each beside the same
    pages' first view (lexical only) timed in the same loop; and the encoder's memory."""
    import dataclasses

    from matching.encoder import default_encoder
    from matching.semantic import page_vector
    from service.settings import Settings

    limit = Settings.model_fields["inline_analysis_chars"].default
    rss0 = proc_status()["rss_mb"]
    encoder = default_encoder()  # as a serving process: one BLAS thread (service.app.serving_threads)
    t = time.perf_counter()
    encoder.load()
    load_s = time.perf_counter() - t
    rss1 = proc_status()["rss_mb"]
    t_vec, vectors = [], []
    for p in pages:  # what a worker computes for the page (in-process here, pages cut as above)
        a = time.perf_counter()
        vectors.append(page_vector(page_of(p), encoder))
        t_vec.append(time.perf_counter() - a)
    rss2 = proc_status()["rss_mb"]
    for p, v in zip(pages[:5], vectors, strict=False):  # warm-up of the analysed blend
        matcher.rank(dataclasses.replace(matcher.analyze(page_of(p)), vector=v), K)
    first, stored, stored_cpu, stored_rank = [], [], [], []
    for p, v in zip(pages, vectors, strict=True):
        a = time.perf_counter()
        matcher.rank(matcher.analyze(page_of(p)), K)
        first.append(time.perf_counter() - a)
        cpu = time.process_time()
        a = time.perf_counter()
        terms = dataclasses.replace(matcher.analyze(page_of(p)), vector=v)
        b = time.perf_counter()
        matcher.rank(terms, K)
        c = time.perf_counter()
        stored_cpu.append(time.process_time() - cpu)
        stored.append(c - a)
        stored_rank.append(c - b)
    shorts = [short_page(p, limit) for p in pages]
    short_first, inline, inline_enc, chars, too_long = [], [], [], [], 0
    for p in shorts:
        a = time.perf_counter()
        matcher.rank(matcher.analyze(page_of(p)), K)
        short_first.append(time.perf_counter() - a)
        a = time.perf_counter()
        page = page_of(p)
        a2 = time.perf_counter()
        v = page_vector(page, encoder)
        b = time.perf_counter()
        matcher.rank(dataclasses.replace(matcher.analyze(page), vector=v), K)
        c = time.perf_counter()
        inline.append(c - a)
        inline_enc.append(b - a2)
        too_long += len(page.title) + len(page.body) > limit  # not inline in the service (0 expected)
        chars.append(len(page.title) + len(page.body))
    return {"encoder": encoder.name, "encoder_load_s": round(load_s, 2), "rss_before_encoder_mb": rss0,
            "rss_with_encoder_mb": rss1, "encoder_rss_mb": rss1 - rss0, "rss_after_encoding_mb": rss2, "page_vector": pct(t_vec),
            "first_view": pct(first), "stored": pct(stored), "stored_cpu": pct(stored_cpu),
            "stored_rank": pct(stored_rank), "inline_chars_limit": limit,
            "short": {"pages": len(shorts), "chars_mean": round(float(np.mean(chars)), 1), "over_limit": too_long,
                      "first_view": pct(short_first), "inline": pct(inline), "encode": pct(inline_enc)}}


def profile_rank(matcher: Any, pages: list[Any]) -> list[dict[str, Any]]:
    """cProfile of analyze + rank over ``pages``: the functions with the most own time, per match."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for page in pages:
        matcher.rank(matcher.analyze(page), K)
    pr.disable()
    st = pstats.Stats(pr)
    rows = []
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    for (file, line, fn), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        where = f"{'/'.join(Path(file).parts[-2:])}:{line}({fn})" if file != "~" else fn
        rows.append({"function": where, "calls_per_match": round(nc / len(pages), 1),
                     "own_ms_per_match": round(tt * 1000 / len(pages), 3),
                     "cum_ms_per_match": round(ct * 1000 / len(pages), 3), "own_share": round(tt / total, 3)})
    rows.sort(key=lambda r: -r["own_ms_per_match"])
    return rows[:15]


def bm25s_peer(catalog: Any, pages: list[dict[str, Any]], page_of: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """bm25s over the same ads, same tokenizer: title + keywords as documents, page tokens as query."""
    import bm25s

    from matching.text import normalize

    tok = catalog.tokenizer
    rss0 = proc_status()["rss_mb"]
    a = time.perf_counter()
    corpus = [tok.tokens(normalize(ad.title + " " + " ".join(ad.keywords))) for ad in catalog.ads]
    b = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    c = time.perf_counter()
    del corpus
    rss1 = proc_status()["rss_mb"]
    k = min(K, len(catalog.ads))
    t_all, t_ret = [], []
    for i, p in enumerate(pages):
        a2 = time.perf_counter()
        page = page_of(p)
        q = tok.tokens(page.title) + tok.tokens(page.body)
        b2 = time.perf_counter()
        retriever.retrieve([q], k=k, show_progress=False, n_threads=1)
        c2 = time.perf_counter()
        if i >= 3:  # warm-up
            t_all.append(c2 - a2)
            t_ret.append(c2 - b2)
    return {"tokenize_s": round(b - a, 2), "index_s": round(c - b, 2), "total_s": round(c - a, 2),
            "rss_mb": rss1 - rss0, "query": pct(t_all), "retrieve_only": pct(t_ret)}


def run_inproc(index_dir: Path, pages_file: Path, rounds: int, profile: bool, log: Path,
               timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH), "--phase", "inproc", "--index-dir", str(index_dir),
           "--pages-file", str(pages_file), "--rounds", str(rounds)] + (["--profile"] if profile else [])
    with log.open("w") as err:
        try:
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"failed": f"in-process phase stopped after {timeout:.0f} s"}
    if res.returncode != 0:
        return {"failed": f"in-process phase exited {res.returncode}: {log.read_text()[-800:]}"}
    return sub_json(res.stdout)

