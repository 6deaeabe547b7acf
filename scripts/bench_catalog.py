"""Synthetic Chinese ad catalogs for benchmarks, drawn from jieba's own dictionary.

The vocabulary is jieba's ``dict.txt`` (word, frequency, POS tag): nouns and verbs (n, nz, vn, v)
of 2-6 CJK characters seen at least ``MIN_FREQ`` times, without stopwords and the 200 most frequent
words. Ads are not uniform noise: the vocabulary is cut into overlapping *topics* of 80 words
(drawn by sqrt(frequency), verbs damped), topics are Zipf-popular, and
every campaign picks one topic, so its ads share keywords the way one advertiser's ads do; one ad
in two also borrows a keyword from another topic. Each ad has 8-15 keywords, a title made of 2-3
of them, a short description, a bid of 30-800 fen and, for one ad in five, a per-keyword bid.

Deterministic: the same ``n`` and ``seed`` give the same catalog (row i does not depend on n).

    python scripts/bench_catalog.py 1000 > ads.jsonl      # one ad a line, index.artifact's JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from matching.types import Ad

MIN_FREQ = 10
NOUNS = frozenset({"n", "nz", "vn"})
VERBS = frozenset({"v"})
VERB_WEIGHT = 0.3  # ad keywords are mostly nouns (楼盘, 房贷); verbs occur, less often
SKIP_MOST_FREQUENT = 200  # 国家, 发展, 工作 ...: words no advertiser buys
N_TOPICS = 5000
TOPIC_WORDS = 80
TOPIC_ZIPF = 0.7
ADS_PER_CAMPAIGN = 20
CAMPAIGNS_PER_ADVERTISER = 2
KEYWORDS = (8, 15)
BID_FEN = (30, 800)
# Ad-copy phrases that recur across advertisers, as in real catalogs (low-idf terms).
COPY = ("限时优惠", "官方直营", "免费咨询", "品质保证", "全国包邮", "立即了解", "专业服务", "新品上市",
        "厂家直销", "在线预约", "一站式服务", "放心选购")
_CJK = re.compile(r"^[\u4e00-\u9fff]{2,6}$")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    words: list[str]
    weights: np.ndarray  # sqrt(frequency), verbs damped; sums to 1


def jieba_dict_path() -> Path:
    import jieba

    return Path(jieba.__file__).parent / "dict.txt"


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Nouns and verbs of 2-6 characters from jieba's dictionary, stopwords and the most frequent
    words left out, weighted by sqrt(frequency)."""
    from matching.tokenize import stopwords

    stop = stopwords()
    rows = []
    with jieba_dict_path().open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            word, freq, pos = parts
            if (pos in NOUNS or pos in VERBS) and int(freq) >= MIN_FREQ and _CJK.match(word) and word not in stop:
                rows.append((word, int(freq), pos))
    rows.sort(key=lambda r: (-r[1], r[0]))
    rows = rows[SKIP_MOST_FREQUENT:]
    w = np.sqrt(np.asarray([r[1] for r in rows], dtype=np.float64))
    w *= np.where(np.asarray([r[2] in VERBS for r in rows]), VERB_WEIGHT, 1.0)
    return Vocabulary([r[0] for r in rows], w / w.sum())


@dataclass(frozen=True, slots=True)
class Topics:
    members: np.ndarray  # N_TOPICS × TOPIC_WORDS word indices
    log_p: np.ndarray  # N_TOPICS × TOPIC_WORDS, log of each member's weight within its topic
    popularity: np.ndarray  # N_TOPICS, sums to 1 (Zipf)


@lru_cache(maxsize=4)
def topics(seed: int) -> Topics:
    vocab = vocabulary()
    rng = np.random.default_rng([seed, 0])
    cdf = np.cumsum(vocab.weights)
    members = np.empty((N_TOPICS, TOPIC_WORDS), dtype=np.int64)
    for t in range(N_TOPICS):
        # draws with replacement by weight; the first TOPIC_WORDS distinct ones make the topic
        draws = np.minimum(np.searchsorted(cdf, rng.random(TOPIC_WORDS * 4)), len(cdf) - 1)
        _, first = np.unique(draws, return_index=True)
        members[t] = draws[np.sort(first)][:TOPIC_WORDS]
    pop = 1.0 / np.arange(1, N_TOPICS + 1) ** TOPIC_ZIPF
    return Topics(members, np.log(vocab.weights[members]), pop / pop.sum())


def n_campaigns(n: int) -> int:
    return -(-n // ADS_PER_CAMPAIGN)


def campaign_id(c: int) -> str:
    return f"cmp-{c:07d}"


def advertiser_id(c: int) -> str:
    return f"adv-{c // CAMPAIGNS_PER_ADVERTISER:07d}"


def generate(n: int, seed: int = 0) -> Iterator[Ad]:
    """``n`` ads, campaign by campaign (each campaign's ads share its topic); ad i is the same
    whatever ``n`` is."""
    words = vocabulary().words
    tp = topics(seed)
    for c in range(n_campaigns(n)):
        rng = np.random.default_rng([seed, 1, c])
        topic = int(rng.choice(N_TOPICS, p=tp.popularity))
        first, last = c * ADS_PER_CAMPAIGN, min(n, (c + 1) * ADS_PER_CAMPAIGN)
        m = ADS_PER_CAMPAIGN  # draws for a whole campaign, so ad i does not depend on n
        # Gumbel top-k again: each ad's keywords, distinct, by weight within the campaign's topic.
        order = np.argsort(-(tp.log_p[topic] + rng.gumbel(size=(m, TOPIC_WORDS))), axis=1)
        n_kw = rng.integers(KEYWORDS[0], KEYWORDS[1] + 1, size=m)
        borrow = rng.random(m) < 0.5
        other = rng.choice(N_TOPICS, size=m, p=tp.popularity)
        other_word = rng.integers(TOPIC_WORDS, size=m)
        title_len = rng.integers(2, 4, size=m)
        copy = rng.integers(len(COPY), size=m)
        bids = rng.integers(BID_FEN[0], BID_FEN[1] + 1, size=m)
        kw_bid = rng.random(m) < 0.2
        kw_bid_extra = rng.integers(10, 100, size=m)
        for j in range(last - first):
            i = first + j
            kws = [words[w] for w in tp.members[topic, order[j, : n_kw[j]]]]
            if borrow[j]:  # one keyword borrowed from another topic
                borrowed = words[tp.members[other[j], other_word[j]]]
                if borrowed not in kws:
                    kws[-1] = borrowed
            bid = int(bids[j])
            yield Ad(id=f"ad-{i:07d}", campaign_id=campaign_id(c), advertiser_id=advertiser_id(c),
                     title="".join(kws[: title_len[j]]), keywords=tuple(kws), bid_fen=bid,
                     description=f"{kws[-1]}、{kws[-2]}，{COPY[copy[j]]}",
                     landing_url=f"https://ads.example.com/{i}",
                     keyword_bids=((kws[0], bid + int(kw_bid_extra[j])),) if kw_bid[j] else ())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of ads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from index.artifact import ad_to_json

    for ad in generate(args.n, args.seed):
        sys.stdout.write(json.dumps(ad_to_json(ad), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
