"""One settings object, read from ADMATCH_* environment variables (and .env), validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration. Every field is an environment variable ``ADMATCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ADMATCH_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL of an external Redis; unset: start an embedded server")
    redis_cluster: bool = Field(default=False, description="treat redis_url as a Redis Cluster node")
    data_dir: Path = Field(default=Path("var"), description="embedded Redis data and default index root")
    index_dir: Path | None = Field(default=None, description="index artifact root (default DATA_DIR/index)")
    admin_key: SecretStr | None = Field(default=None, description="admin API key; unset: admin API refused")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_page_bytes: int = Field(default=200_000, ge=1_000, description="largest page text or HTML accepted")
    relevance_floor: float = Field(default=0.05, ge=0.0, le=10.0, description="lowest score an ad is shown at")
    index_poll_seconds: float = Field(default=2.0, gt=0, le=3600, description="how often a new index is looked for")
    impression_flush_seconds: float = Field(
        default=1.0, ge=0, le=10,
        description="impression counts gather in each process this long before one write; 0: write per request")
    live_poll_seconds: float = Field(default=0.2, gt=0, le=60,
                                     description="how often catalog changes and announced index versions are read")
    click_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="click-signing keys, JSON list, newest last; unset: one generated and kept in Redis")
    click_window_seconds: float = Field(default=3600, gt=0, description="clicks later than this are expired")
    click_min_delay_seconds: float = Field(default=1.0, ge=0, description="clicks sooner are too_fast")
    clicks_per_minute: int = Field(default=10, ge=1, description="per IP or user key, then rate_limited")
    clicks_per_hour: int = Field(default=60, ge=1)
    tag_requests_per_minute_per_site: int = Field(
        default=60_000, ge=1, description="ad-tag requests a site token may make a minute (then 429)")
    tag_requests_per_minute_per_ip: int = Field(
        default=60, ge=1, description="ad-tag requests one client IP may make a minute (then 429)")
    console_session_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86400,
                                         description="a console sign-in lasts this long (then sign in again)")
    demo_pages: bool = Field(default=False, description="serve the demo articles at /demo/article/ "
                                                        "('admatch demo' sets it)")
    demo_traffic: bool = Field(default=True, description="'admatch demo' replays a day of simulated traffic into "
                                                         "a new database at start; false: an empty demo")
    trust_forwarded_for: bool = Field(default=False, description="take the client IP from X-Forwarded-For")
    timezone: str = Field(default="Asia/Shanghai", description="billing days and report hours")
    revenue_share: float = Field(default=0.68, ge=0, le=1, description="publisher's share of spend")
    public_base_url: str | None = Field(default=None, description="base of click URLs; unset: the request's")
    page_cache_size: int = Field(default=10_000, ge=1, description="pages kept in each process's LRU")
    page_cache_ttl_seconds: float = Field(default=3600, gt=0, description="how long a page's ranking is reused")
    page_cache_shared: bool = Field(default=True, description="also share page rankings through Redis")
    embedded_appendfsync: str = Field(default="always", pattern="^(always|everysec|no)$")
    access_log: bool = Field(default=False, description="a log line per HTTP request (uvicorn's access log)")
    semantic: bool = Field(
        default=True,
        description="use the sentence encoder: ads encoded at upload and build, pages in the background; "
                    "false: lexical signals only (about 100 MB less per process)")

    # Conversions and pay per conversion (service/conversions/).
    attribution_window_seconds: float = Field(
        default=7 * 86400, gt=0, le=90 * 86400,
        description="a conversion is attributed to a valid click at most this long before it")
    cvr_prior: float = Field(default=0.02, gt=0, le=1,
                             description="conversions per valid click assumed before any is seen (CPA bids)")
    cvr_prior_clicks: float = Field(
        default=100, gt=0, description="clicks' worth of weight each level's conversion rate is shrunk with")

    # Privacy and ledger retention (issue 14).
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret of user-key and client-IP pseudonyms; unset: one generated, kept in Redis")
    metrics_public: bool = Field(default=False, description="serve /metrics without a key")
    metrics_key: SecretStr | None = Field(
        default=None, description="a key that reads /metrics only (the admin key reads it too)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host headers accepted, JSON list ('*.example.com' allowed); unset: any")
    ledger_archive_dir: Path | None = Field(
        default=None, description="ledger archive root (default DATA_DIR/ledger-archive)")

    @property
    def ledger_archive_root(self) -> Path:
        return self.ledger_archive_dir if self.ledger_archive_dir is not None else self.data_dir / "ledger-archive"
    # Pages understood in the background (service/analysis/): queued by every serving process,
    # encoded by `admatch analyzer` workers, their profiles read back by every serving process.
    analysis_enabled: bool = Field(
        default=True, description="queue pages for the analyzer workers and read their page profiles")
    analysis_queue_max: int = Field(
        default=10_000, ge=1,
        description="longest the analysis queue may grow; pages offered beyond are dropped (and counted)")
    analysis_dedupe_seconds: float = Field(
        default=3600, gt=0, description="a page queued or analysed within this long is not queued again")
    analysis_claim_idle_seconds: float = Field(
        default=60, gt=0,
        description="a page a worker read this long ago without finishing (it died) is taken over by another")
    inline_analysis_chars: int = Field(
        default=160, ge=0,
        description="pages of at most this many characters (title + text) are encoded in the request "
                    "itself, a few ms, instead of waiting for a worker; 0: never")
    profile_ttl_seconds: float | None = Field(
        default=None, gt=0, description="how long a page profile is kept; unset: PAGE_CACHE_TTL_SECONDS x 24")

    # Resilience: bounded Redis, degraded mode, request bodies (service/resilience/, service/api/body_limit.py)
    redis_connect_timeout_ms: int = Field(default=250, ge=1, le=60_000,
                                          description="how long opening a Redis connection may take")
    redis_timeout_ms: int = Field(default=500, ge=1, le=60_000,
                                  description="how long one Redis call may take, opening a connection included")
    redis_breaker_failures: int = Field(
        default=3, ge=1, le=1000,
        description="consecutive Redis connection failures that open the circuit (a timeout opens it at once)")
    redis_breaker_reset_ms: int = Field(default=1000, ge=10, le=600_000,
                                        description="how long the circuit stays open before a probe (a PING)")
    max_body_bytes: int = Field(default=1_048_576, ge=1_024,
                                description="largest request body accepted where no route limit applies")
    max_csv_bytes: int = Field(default=20 * 1_048_576, ge=1_024, description="largest CSV upload accepted")

    # OpenRTB bidder (service/openrtb/): exchanges' bid requests, background page fetches.
    openrtb_path: str = Field(default="/openrtb2/bid", pattern=r"^/[A-Za-z0-9_./-]*$",
                              description="path of the OpenRTB bid endpoint")
    currency_rates: dict[str, float] = Field(
        default_factory=lambda: {"CNY": 1.0, "USD": 7.2},
        description="CNY for one unit of each currency bids and floors may be in, JSON; CNY must be 1")
    openrtb_min_tmax_ms: int = Field(default=10, ge=0, le=10_000,
                                     description="requests with a smaller tmax get no bid (nbr 15)")
    fetch_enabled: bool = Field(default=True, description="fetch unseen site.page URLs in the background")
    fetch_max_bytes: int = Field(default=2_000_000, ge=1_000, description="largest page fetched")
    fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="longest one page fetch may take")
    fetch_max_redirects: int = Field(default=3, ge=0, le=10, description="redirects followed per fetch")
    fetch_allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts fetched even at private or loopback addresses, any port (tests only), JSON list")

    @property
    def spool_dir(self) -> Path:
        """Clicks redirected while Redis was unavailable, kept until decided (service/resilience/spool.py)."""
        return self.data_dir / "spool"

    @property
    def index_root(self) -> Path:
        return self.index_dir if self.index_dir is not None else self.data_dir / "index"

    @property
    def profile_ttl(self) -> float:
        """Seconds a page profile is kept (PROFILE_TTL_SECONDS, else a day at the default page cache TTL)."""
        return self.profile_ttl_seconds if self.profile_ttl_seconds is not None else self.page_cache_ttl_seconds * 24

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append("ADMATCH_REDIS_URL must start with redis://, rediss:// or unix://")
        if self.redis_cluster and self.redis_url is None:
            problems.append("ADMATCH_REDIS_CLUSTER needs ADMATCH_REDIS_URL (a cluster node)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"ADMATCH_TIMEZONE {self.timezone!r} is not an IANA timezone (e.g. Asia/Shanghai)")
        if self.currency_rates.get("CNY") != 1.0:
            problems.append("ADMATCH_CURRENCY_RATES must give CNY as 1 (rates are CNY per unit)")
        if any(not (0 < v < 1e6) for v in self.currency_rates.values()):
            problems.append("ADMATCH_CURRENCY_RATES must be positive numbers")
        if problems:  # reported together, not one per start attempt
            raise ValueError("; ".join(problems))
        return self

    # Click-through model and impression log (issue 15, service/ctr/).
    ctr_enabled: bool = Field(
        default=True,
        description="rank auctions by bid x predicted click-through; false: by bid x relevance (cells and "
                    "the impression log are still written)")
    ctr_exploration: float = Field(
        default=0.05, ge=0.0, le=0.10,
        description="share of auctions ranked by Thompson draws from the model's posterior, so new ads get "
                    "impressions (at most 0.10)")
    ctr_refresh_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="how often each process refits the model from the counters")
    ctr_window_days: int = Field(
        default=14, ge=1, le=60, description="billing days of clicks and impressions the model learns from")
    impression_log_maxlen: int = Field(
        default=1_000_000, ge=0,
        description="impression-log entries kept in Redis (approximately; export them with "
                    "'admatch implog export'); 0: no log")
