"""Wire models of the exchange admin API and report (the OpenRTB objects are in wire.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "某某交易平台", "currency": "CNY", "revenue_share": 0.7, "shading": 0.8}]})

    name: str = Field(min_length=1, max_length=100)
    currency: Literal["CNY", "USD"] = Field(default="CNY", description="currency bids are answered in when "
                                            "the request accepts it")
    revenue_share: float = Field(default=0.7, gt=0, le=1,
                                 description="share of our expected revenue from an impression that we bid")
    shading: float = Field(default=0.8, gt=0, le=1, description="first-price bids: floor + shading × (value − floor)")
    min_cpc_fen: int = Field(default=1, ge=1, le=100_000, description="least price a click is charged, fen")
    nbr_body: bool = Field(default=False, description="answer a no-bid with 200 and nbr instead of 204")


class ExchangeOut(BaseModel):
    id: str
    name: str
    currency: str
    revenue_share: float
    shading: float
    min_cpc_fen: int
    nbr_body: bool
    api_key: str | None = None


class ExchangeDay(BaseModel):
    day: str
    requests: int
    bids: int
    nobids: int
    wins: int
    billed: int
    win_rate: float


class ExchangeReport(BaseModel):
    exchange_id: str
    days: list[ExchangeDay]
