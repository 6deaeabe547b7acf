"""Page analysis: raw text or HTML → normalised page → weighted term counts."""

from __future__ import annotations

from collections import defaultdict

from matching.match_types import exact_form
from matching.text import html_to_text, normalize
from matching.tokenize import Tokenizer
from matching.types import Page, PageTerms

# The title says what the page is about more reliably than any one body sentence, and news
# leads summarise the story; both count extra.
TITLE_WEIGHT = 3.0
LEAD_WEIGHT = 1.5
LEAD_CHARS = 200


def make_page(*, title: str | None = None, text: str | None = None, html: str | None = None) -> Page:
    """Normalise a page given as plain text or HTML (HTML's <title> used when no title given)."""
    body = text or ""
    if html:
        doc = html_to_text(html)
        body = doc.text if not body else body + "\n" + doc.text
        title = title or doc.title
    original = exact_form((title or "") + "\n" + body)
    return Page(title=normalize(title or ""), body=normalize(body), original=original)


def analyze(page: Page, tokenizer: Tokenizer) -> PageTerms:
    """Weighted term counts: title terms ×TITLE_WEIGHT, the lead ×LEAD_WEIGHT, the rest ×1."""
    counts: defaultdict[str, float] = defaultdict(float)
    body = page.body
    # Many articles repeat the title as their first line; count it once, as the title.
    if page.title and body.startswith(page.title):
        body = body[len(page.title):]
    for tok in tokenizer.tokens(page.title):
        counts[tok] += TITLE_WEIGHT
    for tok in tokenizer.tokens(body[:LEAD_CHARS]):
        counts[tok] += LEAD_WEIGHT
    for tok in tokenizer.tokens(body[LEAD_CHARS:]):
        counts[tok] += 1.0
    return PageTerms(page=page, counts=dict(counts))
