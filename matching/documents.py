"""Ad → weighted term counts: the ad's side of the shared vector space."""

from __future__ import annotations

from collections import defaultdict

from matching.text import normalize
from matching.tokenize import Tokenizer, normalize_keyword
from matching.types import Ad

# Keywords are what the advertiser paid for: they weigh more than words of the ad copy.
KEYWORD_WEIGHT = 2.0
TITLE_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 0.5


def ad_document(ad: Ad, tokenizer: Tokenizer) -> dict[str, float]:
    """Weighted term counts for an ad: whole keywords, their sub-words, title and description."""
    counts: defaultdict[str, float] = defaultdict(float)
    for kw in ad.keywords:
        norm = normalize_keyword(kw)
        if not norm:
            continue
        counts[norm] += KEYWORD_WEIGHT
        for tok in tokenizer.tokens(norm):
            if tok != norm:
                counts[tok] += KEYWORD_WEIGHT / 2
    for tok in tokenizer.tokens(normalize(ad.title)):
        counts[tok] += TITLE_WEIGHT
    for tok in tokenizer.tokens(normalize(ad.description)):
        counts[tok] += DESCRIPTION_WEIGHT
    return dict(counts)
