"""Wire schemas of the reports: an advertiser's campaigns side by side, a campaign's report and its
breakdowns, a publisher's report, their rows and the ledger chain heads they carry (schemas.py
holds the rest of the API's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportRow(BaseModel):
    period: str = Field(description="YYYY-MM-DD by day, YYYY-MM-DDTHH:00 by hour, or total")
    impressions: int
    viewable_impressions: int = Field(description="impressions the ad tag saw at least 50 % in view for 1 s")
    viewability: float = Field(description="viewable_impressions / impressions")
    clicks: int = Field(description="valid (charged) clicks")
    invalid_clicks: dict[str, int] = Field(description="invalid clicks by reason (duplicate, bot, expired …)")
    invalid_total: int
    ctr: float = Field(description="clicks / impressions")
    spend_fen: int = Field(description="clicks and CPA conversions charged, fen")
    avg_cpc_fen: float
    conversions: int = Field(default=0, description="conversions counted, in the hour they arrived")
    conversion_rate: float = Field(default=0.0, description="conversions / clicks")
    conversion_value_fen: int = Field(default=0, description="what the counted conversions are worth to the "
                                      "advertiser (the value_fen sent), fen")
    cost_per_conversion_fen: float = Field(default=0.0, description="spend_fen / conversions")
    roi: float = Field(default=0.0, description="conversion_value_fen / spend_fen")


class BreakdownRow(ReportRow):
    key: str | None = Field(default=None, description="the ad id, matched keyword or page category id "
                            "(absent on the totals)")
    name: str | None = Field(default=None, description="a page category's Chinese name ('' unknown)")


class PublisherReportRow(ReportRow):
    earnings_fen: int = Field(description="the publisher's share of spend, floored to whole fen")
    requested_slots: int = Field(default=0, description="ad slots the publisher's /v1/match and ad-tag "
                                                        "requests asked for")
    fill_rate: float = Field(default=0.0, description="impressions / requested_slots (0 when none were asked for)")


class Report(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="first day, YYYY-MM-DD")
    end: str = Field(alias="to", description="last day, YYYY-MM-DD")
    granularity: Literal["hour", "day"]
    timezone: str = Field(description="the billing timezone the days and hours are in")


class ChainHead(BaseModel):
    head: str = Field(description="SHA-256 of the day's last ledger entry")
    seq: int = Field(description="that entry's sequence number in the campaign's chain")
    entries: int = Field(description="ledger entries that billing day")


class CampaignReport(Report):
    campaign_id: str
    rows: list[ReportRow]
    totals: ReportRow
    chain: dict[str, ChainHead] = Field(default_factory=dict, description="ledger chain head by billing day")


class BreakdownReport(Report):
    campaign_id: str
    by: Literal["ad", "keyword", "category"]
    granularity: Literal["total", "day"]  # type: ignore[assignment]  # one row per key, or per key and day
    rows: list[BreakdownRow] = Field(description="most spend first, then most impressions, then key")
    totals: BreakdownRow


class AdvertiserReport(Report):
    advertiser_id: str
    granularity: Literal["total", "day"]  # type: ignore[assignment]  # one row per campaign, or per campaign and day
    rows: list[BreakdownRow] = Field(description="key: the campaign id, name: its name; by total every campaign "
                                     "of the advertiser (zeros included, in id order), by day each campaign "
                                     "and day with any count")
    totals: BreakdownRow


class PublisherReport(Report):
    publisher_id: str
    revenue_share: float
    rows: list[PublisherReportRow]
    totals: PublisherReportRow
