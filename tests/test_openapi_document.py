"""The OpenAPI document states what the service does: its limits refuse what the service refuses,
and every response it describes is the one the service sends (tests/test_openapi_conformance.py
checks the responses under generated requests)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

SECURED_STATUSES = {"401", "403"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document the app serves at /openapi.json (no Redis needed to build it)."""
    settings = Settings(redis_url="redis://127.0.0.1:1", data_dir=tmp_path_factory.mktemp("spec"),
                        _env_file=None)  # type: ignore[call-arg]
    return dict(TestClient(create_app(settings)).get("/openapi.json").json())


def valid(spec: dict[str, Any], name: str, instance: Any) -> bool:
    """Whether ``instance`` passes the document's schema ``name`` (its $refs resolved in the document)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(instance))


AD = {"title": "学区房新盘", "landing_url": "https://example.com/h", "keywords": ["学区房"], "bid_fen": 150}
PAGE = {"text": "本市新开楼盘首付两成"}
REFUSED = [
    ("AdIn", {**AD, "keywords": [""]}),
    ("AdIn", {**AD, "keywords": ["   "]}),
    ("AdIn", {**AD, "keywords": ["长" * 41]}),
    ("AdIn", {**AD, "negative_keywords": [""]}),
    ("AdIn", {**AD, "title": " "}),
    ("AdIn", {**AD, "target_categories": ["nope"]}),
    ("AdIn", {**AD, "exclude_categories": ["9999"]}),
    ("AdPatch", {"keywords": [""]}),
    ("AdPatch", {"target_categories": [""]}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": {}}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": {"title": "只有标题"}}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": {"text": "  ", "html": ""}}),
    ("MatchRequest", {"publisher_id": " ", "page": PAGE}),
    ("PreviewIn", {"page": {}}),
    ("PreviewIn", {"page": {"title": "只有标题"}}),
    ("PreviewIn", {"page": {"text": "  "}}),
    ("CampaignIn", {"name": " "}),
    ("AdvertiserIn", {"name": ""}),
]
ACCEPTED = [
    ("AdIn", AD),
    ("AdIn", {**AD, "keywords": ["[学区房]", '"首付"', "长" * 40], "target_categories": ["441"]}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": PAGE}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": {"html": "<p>楼盘</p>", "text": ""}}),
    ("MatchRequest", {"publisher_id": "demo-news", "page": {"text": "楼盘", "html": None}}),
    ("PreviewIn", {"page": PAGE}),
    ("PreviewIn", {"page": {"url": "https://news.example.com/a/1"}}),
]


@pytest.mark.parametrize("name,instance", REFUSED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REFUSED)])
def test_schema_refuses_what_the_service_refuses(spec: dict[str, Any], name: str, instance: Any) -> None:
    """Input the service answers with a 422 (empty keywords, empty pages, unknown IAB ids, blank names) is invalid by the document's schema too."""
    assert not valid(spec, name, instance)


@pytest.mark.parametrize("name,instance", ACCEPTED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ACCEPTED)])
def test_schema_accepts_what_the_service_accepts(spec: dict[str, Any], name: str, instance: Any) -> None:
    """Valid ads and pages (match-type marks, 40-character keywords, html without text) pass the document's schema."""
    assert valid(spec, name, instance)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_every_422_is_documented_as_a_string_detail_with_fields(spec: dict[str, Any]) -> None:
    """Every operation's 422 is the service's body (detail a string, fields a list), never FastAPI's default array."""
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    documented = [(m, p) for m, p, op in operations(spec) if "422" in op["responses"]]
    assert len(documented) >= 11
    for m, p, op in operations(spec):
        if "422" in op["responses"]:
            ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ValidationErrorOut"), (m, p)
    out = spec["components"]["schemas"]["ValidationErrorOut"]
    assert out["properties"]["detail"]["type"] == "string"
    assert out["properties"]["fields"]["type"] == "array"
    assert set(out["required"]) >= {"error", "detail", "fields"}


def test_operations_that_need_a_key_document_401_and_403(spec: dict[str, Any]) -> None:
    """Every operation with a security requirement documents 401 (no or unknown key) and 403 (wrong role);
    /metrics, which answers every key that does not read metrics with a 401, and /v1/me, which answers any
    valid key, document 401 only."""
    secured = [(m, p, op) for m, p, op in operations(spec) if op.get("security")]
    assert len(secured) >= 18
    missing = [f"{m} {p}" for m, p, op in secured
               if not set(op["responses"]) >= ({"401"} if p in ("/metrics", "/v1/me") else SECURED_STATUSES)]
    assert missing == []


@pytest.mark.parametrize("method,path,statuses", [
    ("POST", "/v1/match", {"200", "401", "403", "413", "422", "503"}),
    ("POST", "/v1/campaigns/{campaign_id}/ads/csv", {"200", "201", "401", "403", "404", "413", "415", "422"}),
    ("POST", "/v1/preview", {"200", "401", "403", "404", "413", "422", "503"}),
    ("GET", "/v1/me", {"200", "401"}),
    ("GET", "/v1/ads/{ad_id}", {"200", "401", "403", "404"}),
    ("PATCH", "/v1/campaigns/{campaign_id}", {"200", "401", "403", "404", "422"}),
    ("GET", "/v1/reports/campaigns/{campaign_id}", {"200", "401", "403", "404", "422"}),
    ("GET", "/v1/click/{token}", {"302", "400"}),
])
def test_operations_document_every_status_they_answer(spec: dict[str, Any], method: str, path: str,
                                                      statuses: set[str]) -> None:
    """Each operation documents every status its code can answer with, and no other."""
    assert set(spec["paths"][path][method.lower()]["responses"]) == statuses


def test_click_redirect_is_documented_as_a_302_without_a_body(spec: dict[str, Any]) -> None:
    """The click's 302 has a Location header and no content; a bad token's 400 is a JSON error."""
    responses = spec["paths"]["/v1/click/{token}"]["get"]["responses"]
    assert "content" not in responses["302"]
    assert "Location" in responses["302"]["headers"]
    assert "application/json" in responses["400"]["content"]


@pytest.mark.parametrize("path", ["/v1/reports/campaigns/{campaign_id}", "/v1/reports/publishers/{publisher_id}"])
def test_reports_document_json_and_csv_and_their_date_limits(spec: dict[str, Any], path: str) -> None:
    """A report is documented as JSON or text/csv, with its day pattern and the 92-day range limit."""
    op = spec["paths"][path]["get"]
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    params = {p["name"]: p for p in op["parameters"]}
    assert params["from"]["schema"]["pattern"] == params["to"]["schema"]["pattern"] == r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$"
    assert "92 days" in params["from"]["description"]
    assert params["format"]["schema"]["enum"] == ["json", "csv"]


def test_csv_upload_documents_every_content_type_it_reads(spec: dict[str, Any]) -> None:
    """The CSV upload's body lists each content type the endpoint accepts, and the columns."""
    content = spec["paths"]["/v1/campaigns/{campaign_id}/ads/csv"]["post"]["requestBody"]["content"]
    assert set(content) == {"text/csv", "application/csv", "text/plain", "application/octet-stream"}
    assert "header" in content["text/csv"]["schema"]["description"]
