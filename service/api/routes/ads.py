"""Advertiser endpoints for ads, including the all-or-nothing CSV upload. Every ad created or
edited here goes through creative review (service.review.creative_review)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from matching.ad_review import rules_by_id
from matching.match_types import MatchType, render_keyword
from matching.semantic import text_of
from service.api import csv_upload
from service.api.catalog_schemas import (
    AdIn,
    AdOut,
    AdPatch,
    ReviewOut,
    ReviewReason,
    UploadResult,
    UploadRowReview,
)
from service.api.console_schemas import CsvPreview, CsvPreviewRow, KeywordOut
from service.api.responses import errors
from service.api.routes import ctx
from service.auth import AdvertiserP
from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from service.review.creative_review import auto_review, reviewed_changes
from service.store.records import AdRecord

router = APIRouter(prefix="/v1", tags=["advertiser: ads"], responses=errors(401, 403, 404))
MAX_CSV_BYTES = 20 * 1024 * 1024

CSV_EXAMPLE = (
    "title,description,landing_url,keywords,bid_fen,keyword_bids,negative_keywords\n"
    "学区房新盘开售,地铁口精装三房,https://example.com/house,楼盘|学区房|首付|房贷,150,学区房:220,烂尾\n"
)


def out(a: AdRecord) -> AdOut:
    return AdOut(id=a.id, campaign_id=a.campaign_id, advertiser_id=a.advertiser_id, title=a.title,
                 description=a.description, landing_url=a.landing_url,
                 keywords=[render_keyword(k, dict(a.match_types).get(k, MatchType.BROAD)) for k in a.keywords],
                 bid_fen=a.bid_fen, keyword_bids=dict(a.keyword_bids),
                 negative_keywords=list(a.negative_keywords), target_categories=list(a.target_categories),
                 exclude_categories=list(a.exclude_categories), allow_sensitive=a.allow_sensitive,
                 status=a.status,
                 created_at=a.created_at, updated_at=a.updated_at, review=review_out(a))


def reasons_out(a: AdRecord) -> list[ReviewReason]:
    rules = rules_by_id()
    out = []
    for rule, article, term, field in a.review_findings:
        known = rules.get(rule)
        out.append(ReviewReason(rule=rule, article=article, term=term, field=field,
                                reason_zh=known.reason_zh if known else "",
                                reason_en=known.reason_en if known else ""))
    return out


def review_out(a: AdRecord) -> ReviewOut:
    return ReviewOut(status=a.review_status, reasons=reasons_out(a), note=a.review_note or None,
                     reviewed_at=a.reviewed_at or None)


@router.get("/campaigns/{campaign_id}/ads", summary="List a campaign's ads")
async def list_ads(campaign_id: str, request: Request, p: AdvertiserP) -> list[AdOut]:
    catalog = ctx(request).catalog
    await catalog.get_campaign(p.id, campaign_id)
    return [out(a) for a in await catalog.list_ads(p.id, campaign_id)]


@router.post("/campaigns/{campaign_id}/ads", status_code=status.HTTP_201_CREATED,
             summary="Create an ad with its keyword set", responses=errors(422))
async def create_ad(campaign_id: str, body: AdIn, request: Request, p: AdvertiserP) -> AdOut:
    c = ctx(request)
    await c.catalog.get_campaign(p.id, campaign_id)
    fields = body.to_fields()
    fields.update(auto_review(fields))
    await encode_ads(request, [fields])
    [rec] = await c.catalog.create_ads(p.id, campaign_id, [fields])
    return out(rec)


async def encode_ads(request: Request, items: list[dict[str, Any]]) -> None:
    """Encode new or edited ads' texts before they enter the catalog (service.serving.ad_vectors)."""
    vectors = ctx(request).ad_vectors
    if vectors is not None and items:
        await vectors.store([text_of(f["title"], f["keywords"]) for f in items])


CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")
CSV_BODY = {"type": "string", "description": (
    "UTF-8 (BOM optional) or GBK. The first line is the header naming the columns: title, landing_url, "
    "keywords, bid_fen, and optionally " + ", ".join(csv_upload.OPTIONAL) + "; one ad per line after it, "
    f"at most {csv_upload.MAX_ROWS} lines and {MAX_CSV_BYTES} bytes; lists separated by | or ;, "
    "keyword_bids as keyword:fen. Each row is checked as the JSON ad is (see AdIn).")}


@router.post(
    "/campaigns/{campaign_id}/ads/csv", status_code=status.HTTP_201_CREATED, response_model=UploadResult,
    summary="Upload many ads as CSV: all rows are stored, or none; rows creative review flags are "
            "stored pending review and listed in `flagged`",
    description="A bad row gets a 422 listing every bad line (`rows`), and nothing is stored. With "
                "`dry_run=true` the file is read and reviewed the same way but nothing is stored: a 200 "
                "previews every row (its keywords, bid and the review status it would get).",
    responses={**errors(413, 415, 422), 200: {"model": CsvPreview, "description": "dry_run=true: every row "
                                                "as it would be stored; nothing was stored"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        t: {"schema": CSV_BODY, "example": CSV_EXAMPLE} for t in CSV_TYPES}}},
)
async def upload_csv(campaign_id: str, request: Request, p: AdvertiserP,
                     dry_run: Annotated[bool, Query(description="preview the rows; store nothing")] = False,
                     ) -> UploadResult | JSONResponse:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        raise UnsupportedMedia(f"content-type {ctype or 'missing'} is not CSV; send the file with "
                               "'Content-Type: text/csv'")
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise PayloadTooLarge(f"the CSV is {len(raw)} bytes; split it into files under {MAX_CSV_BYTES} bytes")
    catalog = ctx(request).catalog
    await catalog.get_campaign(p.id, campaign_id)
    rows = csv_upload.parse_rows(raw)
    items = [ad.to_fields() for _line, ad in rows]
    for item in items:
        item.update(auto_review(item))
    if dry_run:
        preview = _preview([line for line, _ad in rows], items, p.id, campaign_id)
        return JSONResponse(preview.model_dump(mode="json"))  # the documented 200
    await encode_ads(request, items)
    recs = await catalog.create_ads(p.id, campaign_id, items)
    flagged = [UploadRowReview(line=line, ad_id=r.id, status=r.review_status, reasons=reasons_out(r))
               for (line, _ad), r in zip(rows, recs, strict=True) if r.review_findings]
    return UploadResult(created=len(recs), ads=[out(r) for r in recs], flagged=flagged)


def _preview(lines: list[int], items: list[dict[str, Any]], advertiser_id: str, campaign_id: str) -> CsvPreview:
    """The rows as :meth:`CatalogStore.create_ads` would store them (records built, never written)."""
    out_rows = []
    for line, item in zip(lines, items, strict=True):
        rec = AdRecord(id="", campaign_id=campaign_id, advertiser_id=advertiser_id, created_at="", updated_at="",
                       **item)
        types = dict(rec.match_types)
        out_rows.append(CsvPreviewRow(
            line=line, title=rec.title, bid_fen=rec.bid_fen, keyword_bids=dict(rec.keyword_bids),
            keywords=[KeywordOut(keyword=k, match_type=types.get(k, MatchType.BROAD.value)) for k in rec.keywords],
            status=rec.review_status, reasons=reasons_out(rec)))
    return CsvPreview(rows=out_rows, would_create=len(out_rows), flagged=sum(1 for r in out_rows if r.reasons))


@router.get("/ads/{ad_id}", summary="One of my ads")
async def get_ad(ad_id: str, request: Request, p: AdvertiserP) -> AdOut:
    return out(await ctx(request).catalog.get_ad(p.id, ad_id))


@router.patch("/ads/{ad_id}", summary="Change an ad (copy, keywords, bids, status); changed copy, keywords "
                                      "or categories are reviewed again", responses=errors(422))
async def update_ad(ad_id: str, body: AdPatch, request: Request, p: AdvertiserP) -> AdOut:
    catalog = ctx(request).catalog
    changes = body.to_changes()
    current = await catalog.get_ad(p.id, ad_id)
    if "keyword_bids" in changes and "keywords" not in changes:
        unknown = sorted({kw for kw, _ in changes["keyword_bids"]} - set(current.keywords))
        if unknown:
            raise InvalidInput(f"keyword_bids: names {unknown[:5]} which are not among the ad's keywords; "
                               "add them to keywords in the same request or remove their bids",
                               extra={"fields": [{"field": "keyword_bids", "message": "unknown keywords"}]})
    if "title" in changes or "keywords" in changes:
        await encode_ads(request, [{"title": changes.get("title", current.title),
                                    "keywords": changes.get("keywords", current.keywords)}])
    return out(await catalog.update_ad(p.id, ad_id, changes, revise=reviewed_changes))


@router.delete("/ads/{ad_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an ad")
async def delete_ad(ad_id: str, request: Request, p: AdvertiserP) -> Response:
    await ctx(request).catalog.delete_ad(p.id, ad_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
