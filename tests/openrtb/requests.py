"""Small BidRequests written for these tests (not from the reference pack)."""

from __future__ import annotations

from typing import Any


def telecom(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "t-telecom", "at": 2, "tmax": 300, "cur": ["CNY"],
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.1, "bidfloorcur": "CNY"}],
        "site": {"page": "https://news.example.com/tech/3g-plans.html", "cattax": 7, "cat": ["596"],
                 "content": {"title": "3G手机资费新政：长话市话漫游一个价",
                             "kwarray": ["手机套餐", "长话", "市话", "漫游"], "cattax": 7, "cat": ["632"]}},
    }
    body.update(overrides)
    return body


def realty_two_imps(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "t-realty", "cur": ["USD"], "test": 0,
        "imp": [{"id": "a", "banner": {"format": [{"w": 728, "h": 90}]}, "bidfloor": 0.01},
                {"id": "b", "banner": {"w": 300, "h": 250}, "bidfloor": 0.01}],
        "site": {"page": "https://house.example.com/a.html",
                 "content": {"title": "城东新盘开盘 首付两成", "keywords": "楼盘,首付,房贷,公积金,开盘"}},
    }
    body.update(overrides)
    return body
