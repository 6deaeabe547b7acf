"""The Redis key schema, written down once. Every key starts with ``am:``.

Catalog (an advertiser's keys share the hash tag ``{a:ID}``, so an upload is one MULTI/EXEC
transaction in one slot, on a single server and on Redis Cluster alike)::

    am:advertisers                  SET     advertiser ids
    am:publishers                   SET     publisher ids
    am:apikey:<sha256 of key>       STRING  "advertiser:<id>" | "publisher:<id>"
    am:pub:<P>                      STRING  publisher JSON
    am:{a:A}:advertiser             STRING  advertiser JSON
    am:{a:A}:campaigns              SET     campaign ids of A
    am:{a:A}:campaign:<C>           STRING  campaign JSON
    am:{a:A}:ads                    SET     ad ids of A
    am:{a:A}:ad:<AD>                STRING  ad JSON
    am:blocked                      SET     "ad:<id>" / "cmp:<id>" that must not serve now
    am:catalog:version              INT     bumped on every catalog change (replicas poll it)
"""

from __future__ import annotations

PREFIX = "am:"
ADVERTISERS = PREFIX + "advertisers"
PUBLISHERS = PREFIX + "publishers"
BLOCKED = PREFIX + "blocked"
CATALOG_VERSION = PREFIX + "catalog:version"


def api_key(digest: str) -> str:
    return f"{PREFIX}apikey:{digest}"


def publisher(pid: str) -> str:
    return f"{PREFIX}pub:{pid}"


def _adv(aid: str) -> str:
    return f"{PREFIX}{{a:{aid}}}"


def advertiser(aid: str) -> str:
    return f"{_adv(aid)}:advertiser"


def campaigns(aid: str) -> str:
    return f"{_adv(aid)}:campaigns"


def campaign(aid: str, cid: str) -> str:
    return f"{_adv(aid)}:campaign:{cid}"


def ads(aid: str) -> str:
    return f"{_adv(aid)}:ads"


def ad(aid: str, ad_id: str) -> str:
    return f"{_adv(aid)}:ad:{ad_id}"


def blocked_ad(ad_id: str) -> str:
    return f"ad:{ad_id}"


def blocked_campaign(cid: str) -> str:
    return f"cmp:{cid}"
