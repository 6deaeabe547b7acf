#!/usr/bin/env python3
"""Fit the matcher's two blends (first view, analysed); reproduces MatchConfig's defaults.

    python scripts/fit_blend.py ../shared/data/eval

EVAL_DIR holds one folder per labelled track (main/, tnews/), each with pages.dev.jsonl and
ads.jsonl (see ../shared/data/README.md). For every track the ads are indexed with the production
builder (sentence-encoder vectors included), every page is encoded as the background analyzer
encodes it, and every page is scored against *every* ad with the production matcher, giving one
signal vector per (page, ad); an ad is relevant when its category is the page's.

Each blend is a linear scorer fitted with a listwise loss: for each page, the softmax over all
ads of w·signals should put its mass on the relevant ads (−log Σ_relevant softmax, plus a small
L2 penalty). The first-view blend sees the lexical signals only (its semantic weight is 0), the
analysed blend all of them. Both tracks are fitted together, so one set of weights serves long
articles and short headlines alike. Nothing is reported on pages the weights were fitted on:
figures come from 5-fold cross-validation by page (the other track always in the training set)
and from fitting on one track and testing on the other. Each blend's neighbour weight μ is then
chosen from a small grid on the cross-validated scores, by the mean of P@1 and P@5 over both
tracks (the smallest μ within MU_TOLERANCE of the best). The weights printed at the end (fitted
on all pages, rescaled to sum to one) are the defaults of matching.matcher.FIRST_VIEW / ANALYSED.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index import builder  # noqa: E402
from index.encoding import encode_texts  # noqa: E402
from matching.analyze import make_page  # noqa: E402
from matching.encoder import default_encoder  # noqa: E402
from matching.matcher import MatchConfig, Matcher  # noqa: E402
from matching.semantic import ad_text, page_vector  # noqa: E402
from matching.signals import SIGNALS  # noqa: E402
from matching.types import Ad  # noqa: E402

L2_PENALTY = 1e-3
FOLDS = 5
MU_GRID = (0.0, 0.2, 1 / 3, 0.5, 0.6, 2 / 3, 0.75, 0.8, 0.9)
SEED = 0
MU_TOLERANCE = 0.002  # a fifth of the objective's standard error on these tracks (~0.01)
LEXICAL = len(SIGNALS) - 1  # the first-view blend's signals: all but the last (semantic)
assert SIGNALS[-1] == "semantic"


@dataclass
class Track:
    name: str
    X: np.ndarray  # pages × ads × signals (an analysed page's)
    X_first: np.ndarray  # pages × ads × lexical signals, as the first view scores them
    coverage: np.ndarray  # pages: the share of the page on catalog words (scales the lexical signals)
    Y: np.ndarray  # pages × ads, 1 where the ad's category is the page's
    W: np.ndarray  # ads × ads neighbour weights


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_track(folder: Path) -> Track:
    ads = read_jsonl(folder / "ads.jsonl")
    pages = read_jsonl(folder / "pages.dev.jsonl")
    dom = [Ad(id=a["id"], campaign_id="fit", advertiser_id="fit", title=a["title"],
              keywords=tuple(dict.fromkeys(a["keywords"])), bid_fen=100) for a in ads]
    encoder = default_encoder()
    catalog = builder.build(dom, semantic=(encoder, encode_texts([ad_text(ad) for ad in dom], encoder)))
    matcher = Matcher(catalog, MatchConfig(candidates=len(ads), floor=0.0))
    X = np.zeros((len(pages), len(ads), len(SIGNALS)), dtype=np.float32)
    X_first = np.zeros((len(pages), len(ads), LEXICAL), dtype=np.float32)
    coverage = np.zeros(len(pages), dtype=np.float32)
    for i, p in enumerate(pages):
        page = make_page(title=p.get("title"), text=p["text"])
        terms = matcher.analyze(page)
        scored = matcher.scores(terms)  # None when the page shares no word with the catalog
        if scored is not None:
            X_first[i, scored.evidence.rows] = scored.evidence.values[:, :LEXICAL]
        scored = matcher.scores(replace(terms, vector=page_vector(page, encoder)))
        if scored is not None:
            X[i, scored.evidence.rows] = scored.evidence.values
            coverage[i] = scored.evidence.coverage
    cats = np.array([a["category"] for a in ads])
    Y = (np.array([p["category"] for p in pages])[:, None] == cats[None, :]).astype(np.float64)
    assert catalog.neighbours is not None
    return Track(folder.name, X, X_first, coverage, Y, catalog.neighbours.toarray())


def listwise_loss(w: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    total, grad, n = 0.0, np.zeros_like(w), 0
    for X, Y in parts:
        s = X @ w
        pos = np.where(Y > 0, s, -np.inf)
        total += float((logsumexp(s, 1) - logsumexp(pos, 1)).sum())
        grad += np.einsum("pa,paf->f", softmax(s, 1) - softmax(pos, 1), X)
        n += len(X)
    return total / n + L2_PENALTY * float(w @ w), grad / n + 2 * L2_PENALTY * w


def fit(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    w0 = np.ones(parts[0][0].shape[-1])
    w = minimize(listwise_loss, w0, args=(parts,), jac=True, method="L-BFGS-B").x
    return w / w.sum()


def precision(S: np.ndarray, Y: np.ndarray) -> dict[int, float]:
    # Ties (pages sharing no term with the catalog score 0 everywhere) break on row order.
    top = np.argsort(-S, axis=1, kind="stable")[:, :5]
    hits = np.take_along_axis(Y, top, 1)
    return {k: round(float(hits[:, :k].mean()), 4) for k in (1, 3, 5)}


def smoothed(base: np.ndarray, W: np.ndarray, mu: float) -> np.ndarray:
    return (1 - mu) * base + mu * base @ W.T


def cross_validated_base(track: Track, other: Track) -> np.ndarray:
    """Base scores of every page from weights fitted without that page (other track included)."""
    rng = np.random.default_rng(SEED)
    folds = np.array_split(rng.permutation(len(track.X)), FOLDS)
    base = np.zeros(track.Y.shape)
    for test in folds:
        train = np.setdiff1d(np.arange(len(track.X)), test)
        w = fit([(track.X[train], track.Y[train]), (other.X, other.Y)])
        base[test] = track.X[test] @ w
    return base


def first_view(t: Track) -> Track:
    """The lexical signals alone. The page's coverage scales every score of the page alike on
    the first view (no change of ranking), so they are fitted unscaled."""
    return Track(t.name, t.X_first, t.X_first, t.coverage, t.Y, t.W)


def analysed(t: Track) -> Track:
    """All signals as the analysed blend sees them: the lexical ones scaled by coverage (see
    matching.matcher.Matcher.scores), the semantic one not."""
    X = t.X.copy()
    X[..., :LEXICAL] *= t.coverage[:, None, None]
    return Track(t.name, X, t.X_first, t.coverage, t.Y, t.W)


def fit_blend(tracks: list[Track], label: str) -> dict[str, float]:
    """Cross-validated figures and the blend fitted on all pages (weights and μ)."""
    a, b = tracks
    print(f"== {label} blend ({a.X.shape[-1]} signals)")
    for train, test in ((a, b), (b, a)):
        w = fit([(train.X, train.Y)])
        print(f"fit on {train.name}, test on {test.name}: {precision(test.X @ w, test.Y)}")
    cv_base = {t.name: cross_validated_base(t, o) for t, o in ((a, b), (b, a))}
    print("5-fold cross-validated (other track in training):")
    objectives: dict[float, float] = {}
    for mu in MU_GRID:
        res = {t.name: precision(smoothed(cv_base[t.name], t.W, mu), t.Y) for t in tracks}
        objectives[mu] = float(np.mean([r[k] for r in res.values() for k in (1, 5)]))
        print(f"  mu={mu:.3f}: {res}  mean P@1,P@5 {objectives[mu]:.4f}")
    # The least smoothing within MU_TOLERANCE of the best: the metric only sees categories, and
    # an ad's own keyword evidence should keep it ahead of same-topic ads that lack the keywords.
    best = max(objectives.values())
    best_mu = min(mu for mu, v in objectives.items() if v >= best - MU_TOLERANCE)
    w = fit([(t.X, t.Y) for t in tracks])
    weights = {s: round(float(x), 3) for s, x in zip(SIGNALS, w, strict=False)}
    return {**weights, "neighbours": round(best_mu, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", type=Path, help="folder with main/ and tnews/ tracks")
    args = ap.parse_args()
    tracks = [load_track(args.eval_dir / name) for name in ("main", "tnews")]

    print("single signals (no fitting):")
    for t in tracks:
        print(f"  {t.name}: " + ", ".join(f"{s} {precision(t.X[..., j], t.Y)[1]:.4f}"
                                          for j, s in enumerate(SIGNALS)))
    first = fit_blend([first_view(t) for t in tracks], "first-view")
    full = fit_blend([analysed(t) for t in tracks], "analysed")
    print("fitted on all pages of both tracks, rescaled to sum to one (FIRST_VIEW, ANALYSED):")
    print(json.dumps({"first_view": first, "analysed": full}))


if __name__ == "__main__":
    main()
