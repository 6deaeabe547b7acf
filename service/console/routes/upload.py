"""CSV upload in two steps: the file is checked by the API's dry run (every row parsed and reviewed,
nothing stored) and shown — each bad row with its line and message, each row creative review would
hold with its reasons — then stored, all rows or none, when the advertiser confirms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from service.console.api import Api, ApiError
from service.console.session import Session
from service.console.web import form_of, render, role

router = APIRouter(prefix="/console", include_in_schema=False)
Advertiser = Annotated[Session, Depends(role("advertiser"))]
CSV = {"Content-Type": "text/csv; charset=utf-8"}


@router.get("/upload/{campaign_id}", response_class=HTMLResponse)
async def upload_form(request: Request, campaign_id: str, s: Advertiser) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        campaign = await api.get(f"/v1/campaigns/{campaign_id}")
    return render(request, "upload.html", s, campaign=campaign)


async def _csv_of(form: Any) -> bytes:
    upload = form.get("file")
    if isinstance(upload, UploadFile):
        return await upload.read()
    text = form.get("csv_text")
    return text.encode("utf-8") if isinstance(text, str) else b""


@router.post("/upload/{campaign_id}", response_class=HTMLResponse)
async def upload(request: Request, campaign_id: str, s: Advertiser) -> HTMLResponse:
    form = await form_of(request, s, max_part_size=request.app.state.ctx.settings.max_csv_bytes)
    raw = await _csv_of(form)
    confirm = form.get("step") == "store"
    values: dict[str, Any] = {"csv_text": raw.decode("utf-8", "replace")}
    async with Api(request, s.api_key) as api:
        campaign = await api.get(f"/v1/campaigns/{campaign_id}")
        path = f"/v1/campaigns/{campaign_id}/ads/csv"
        try:
            if confirm:
                r = await api.call("POST", path, content=raw, headers=CSV)
                values["stored"] = r.json()
            else:
                r = await api.call("POST", path, content=raw, headers=CSV, params={"dry_run": "true"})
                values["preview"] = r.json()
        except ApiError as e:
            if e.status not in (413, 415, 422):
                raise
            return render(request, "upload.html", s, e.status, campaign=campaign, error=e.detail,
                          bad_rows=e.body.get("rows") or [], **values)
    return render(request, "upload.html", s, campaign=campaign, **values)
