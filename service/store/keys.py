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
    am:{g}:blocked                  SET     "ad:<id>" / "cmp:<id>" that must not serve now
    am:{g}:catalog:version          INT     bumped on every catalog change (replicas poll it)
    am:{g}:changes                  STREAM  change log: one entry (a=<advertiser>, ad=<ad>) per ad
                                            created, edited, paused, resumed or deleted (with
                                            its campaign); serving processes replay it
    am:{g}:index:current            STRING  the published index version (replicas load it from
                                            the shared artifact directory)
    am:{g}:review:ads               HASH    ad id → advertiser id of every ad creative review flagged
                                            (pending, approved or rejected: admins act on them by id)
    am:{g}:review:pending           SET     ad ids waiting for an admin (status pending_review)

Billing (a campaign's keys share the hash tag ``{c:ID}``, so the click Lua script touches one
slot and runs unchanged on Redis Cluster)::

    am:{c:C}:budget                 HASH    daily, total (fen; -1 = no limit), pacing, freq_cap
    am:{c:C}:spend                  INT     total spend, fen
    am:{c:C}:spend:<day>            INT     spend on <day> (YYYYMMDD, billing timezone)
    am:{c:C}:clicked:<day>          SET     impression ids issued on <day> whose click was charged
    am:{c:C}:invalid:<day>          HASH    "<impression id>|<reason>" → invalid clicks with that reason
                                            on an impression issued on <day>
    am:{c:C}:stats:<hour>           HASH    counters for <hour> (YYYYMMDDHH): imp, click, spend,
                                            inv:<reason> (invalid clicks in the ledger: the first of
                                            each reason per impression), rep:<reason> (repeats,
                                            counted only), a:<ad>:{imp,click,spend,inv},
                                            p:<pub>:{imp,click,spend,inv:<reason>,rep:<reason>},
                                            k:<matched keyword>:{imp,click,spend,conv,cval},
                                            g:<page category>:{imp,click,spend,conv,cval};
                                            conversions in the hour they arrived: conv, cval (their
                                            value, fen), cspend (CPA charges, also in spend),
                                            xconv:<reason> (conversions not counted),
                                            a:<ad>:{conv,cval}, p:<pub>:conv
    am:{c:C}:clk:<imp>              HASH    the click on impression <imp>, for conversions: v (1 valid,
                                            0 invalid), t (ms), ad, pub, adv, kw, cat, cpa (event the
                                            click was bought for, '' = CPC), price (fen per
                                            conversion); TTL the attribution window + a day
    am:{c:C}:cvr                    HASH    conversion-rate counts (no expiry): click, a:<ad>:click
                                            (valid clicks), conv:<event>, a:<ad>:conv:<event>
    am:{c:C}:orders                 HASH    order id (or "click:<imp>:<event>" without one) → the
                                            counted conversion's "<imp>|<amount>"; idempotency
    am:{c:C}:conversions            STREAM  every conversion on the campaign's clicks, counted or not:
                                            imp, ad, event, value, order, reason, amount, ts (capped)
    am:{a:A}:order:<order id>       STRING  the click id an advertiser's order was first sent with
                                            (one order counts for one click of one campaign), TTL
    am:conv:rejected                STREAM  conversions naming no click of ours or another
                                            advertiser's: click, adv, event, order, reason, ts (capped)
    am:{c:C}:ledger                 STREAM  every charge and the first invalid click of each reason per
                                            impression: ad, amount, day, hour, imp, pub, reason, ts,
                                            and the hash chain's seq, prev, hash (service.billing.chain)
                                            (older entries move to the archive: service.billing.archive)
    am:{c:C}:ledger:head            HASH    the ledger chain's head: seq, hash (of the last entry), and per
                                            billing day h:<day> (its last entry's hash), s:<day> (its
                                            seq), n:<day> (entries that day); kept for good
    am:{u:<user>}:freq:<day>        HASH    campaign id → impressions shown to one user (the user
                                            key's pseudonym, an HMAC: service.billing.pseudonyms)
                                            on <day>: one HMGET per match reads them all
    am:billing:campaigns            SET     campaigns with a budget hash (ledger verify walks it)
    am:{p:P}:campaigns              SET     campaigns that have shown on publisher P
    am:{rl:<client>}:m:<minute>     INT     clicks by one client (pseudonym of its IP or user) in a
                                            minute (and :h:<hour>); tag requests by site token
                                            ("tag-site:<token>") and by IP ("tag-ip:<ip>") likewise
    am:site:<token>                 STRING  site JSON (service.tag.sites): publisher, allowed origins
    am:{p:P}:sites                  SET     site tokens of publisher P
    am:{p:P}:stats:<hour>           HASH    publisher P's counters for <hour> (YYYYMMDDHH): slots (ad
                                            slots its /v1/match and tag requests asked for: the
                                            fill rate's denominator)
    am:{c:C}:viewed:<day>           SET     impression ids issued on <day> counted viewable (once each;
                                            the count goes to stats ``view``, ``a:<ad>:view``,
                                            ``p:<pub>:view`` of the impression's hour)
    am:clicksecret                  STRING  generated click-signing key when none is configured
    am:pseudonymsecret              STRING  generated pseudonym (HMAC) secret when none is configured
    am:demo:traffic                 STRING  JSON: the demo's day of simulated traffic was replayed into
                                            this database (started; then its figures), so a second
                                            ``admatch demo`` start replays nothing (service.demo.traffic)
    am:pc<format>:<index version>:<page hash>  STRING  cached page ranking (service.serving.page_cache), TTL
    am:vec:<encoder>:<text hash>    STRING  an ad text's raw sentence-encoder vector (float16, base64),
                                            written at upload/edit, TTL (service.serving.ad_vectors)

Click-through model and impression log (service.ctr; a campaign's cells share its hash tag)::

    am:{c:C}:ctr:<day>              HASH    what the click-through model learns from, by impression day
                                            (billing timezone): one cell per ad, page category, matched
                                            keyword, publisher, slot and relevance band, fields
                                            "<ad>\x1f<category>\x1f<keyword>\x1f<publisher>\x1f<slot>\x1f<band>\x1f"
                                            + n (impressions), e (Σ relevance score, millionths),
                                            c (genuine clicks: charged, or refused for budget only)
                                            (service.ctr.cells); TTL CTR_WINDOW_DAYS + 2 days
    am:ctr:campaigns:<day>          SET     campaigns with cells on <day> (the model's refresh reads these)
    am:{implog}:events              STREAM  the impression log: one entry per impression shown and per
                                            genuine click, field j = a JSON object (service.ctr.log);
                                            no user data; trimmed to IMPRESSION_LOG_MAXLEN (approximately)

Page analysis (service.analysis; the queue's keys share the hash tag ``{analysis}``, so the enqueue
script touches one slot and runs unchanged on Redis Cluster)::

    am:{analysis}:pages             STREAM  pages waiting for an ``admatch analyzer`` worker: k (page
                                            key), ti (normalised title), b (normalised body, cut to
                                            what the encoder reads), t (enqueue time, unix s);
                                            consumer group ``analyzers``; entries deleted once analysed
    am:{analysis}:seen:<page key>   STRING  "1", TTL ANALYSIS_DEDUPE_SECONDS: the page was queued or
                                            analysed recently and is not queued again
    am:pp:<encoder hash>:<page key> STRING  page profile: the page's encoder vector as little-endian
                                            float16 bytes, TTL PROFILE_TTL_SECONDS; the encoder's name
                                            is hashed into the key, so another encoder's is never read
"""

from __future__ import annotations

PREFIX = "am:"
ADVERTISERS = PREFIX + "advertisers"
PUBLISHERS = PREFIX + "publishers"
# One hash tag for the global keys that one transaction updates together (and one MGET reads).
BLOCKED = PREFIX + "{g}:blocked"
CATALOG_VERSION = PREFIX + "{g}:catalog:version"
CHANGES = PREFIX + "{g}:changes"
INDEX_CURRENT = PREFIX + "{g}:index:current"
REVIEW_ADS = PREFIX + "{g}:review:ads"
REVIEW_PENDING = PREFIX + "{g}:review:pending"
CHANGES_MAXLEN = 500_000  # change-log entries kept (approximately); ample between nightly builds


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


BILLING_CAMPAIGNS = PREFIX + "billing:campaigns"
UNLIMITED = -1  # budget and cap fields: no limit
CLICK_SECRET = PREFIX + "clicksecret"
PSEUDONYM_SECRET = PREFIX + "pseudonymsecret"
DEMO_TRAFFIC = PREFIX + "demo:traffic"


def _cmp(cid: str) -> str:
    return f"{PREFIX}{{c:{cid}}}"


def budget(cid: str) -> str:
    return f"{_cmp(cid)}:budget"


def spend_total(cid: str) -> str:
    return f"{_cmp(cid)}:spend"


def spend_day(cid: str, day: str) -> str:
    return f"{_cmp(cid)}:spend:{day}"


def clicked(cid: str, day: str) -> str:
    return f"{_cmp(cid)}:clicked:{day}"


def invalid_clicks(cid: str, day: str) -> str:
    return f"{_cmp(cid)}:invalid:{day}"


def stats(cid: str, hour: str) -> str:
    return f"{_cmp(cid)}:stats:{hour}"


def ledger(cid: str) -> str:
    return f"{_cmp(cid)}:ledger"


def ledger_head(cid: str) -> str:
    return f"{_cmp(cid)}:ledger:head"


def click_record(cid: str, imp: str) -> str:
    return f"{_cmp(cid)}:clk:{imp}"


def conversion_counts(cid: str) -> str:
    return f"{_cmp(cid)}:cvr"


def orders(cid: str) -> str:
    return f"{_cmp(cid)}:orders"


def conversions(cid: str) -> str:
    return f"{_cmp(cid)}:conversions"


def advertiser_order(aid: str, order: str) -> str:
    return f"{_adv(aid)}:order:{order}"


CONVERSIONS_REJECTED = PREFIX + "conv:rejected"


def frequency(user: str, day: str) -> str:
    return f"{PREFIX}{{u:{user}}}:freq:{day}"


def publisher_campaigns(pid: str) -> str:
    return f"{PREFIX}{{p:{pid}}}:campaigns"


def publisher_sites(pid: str) -> str:
    return f"{PREFIX}{{p:{pid}}}:sites"


def publisher_stats(pid: str, hour: str) -> str:
    return f"{PREFIX}{{p:{pid}}}:stats:{hour}"


def site(token: str) -> str:
    return f"{PREFIX}site:{token}"


def viewed(cid: str, day: str) -> str:
    return f"{_cmp(cid)}:viewed:{day}"


def rate_minute(client: str, minute: str) -> str:
    return f"{PREFIX}{{rl:{client}}}:m:{minute}"


def rate_hour(client: str, hour: str) -> str:
    return f"{PREFIX}{{rl:{client}}}:h:{hour}"


def ad_vector(encoder: str, text_hash: str) -> str:
    return f"{PREFIX}vec:{encoder}:{text_hash}"


def ctr_cells(cid: str, day: str) -> str:
    return f"{_cmp(cid)}:ctr:{day}"


def ctr_campaigns(day: str) -> str:
    return f"{PREFIX}ctr:campaigns:{day}"


IMPRESSION_LOG = PREFIX + "{implog}:events"


ANALYSIS_QUEUE = PREFIX + "{analysis}:pages"
ANALYSIS_GROUP = "analyzers"


def analysis_seen(page_key: str) -> str:
    return f"{PREFIX}{{analysis}}:seen:{page_key}"


def page_profile(encoder_hash: str, page_key: str) -> str:
    return f"{PREFIX}pp:{encoder_hash}:{page_key}"
