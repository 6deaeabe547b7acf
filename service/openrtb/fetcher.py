"""Pages known by URL, and the background fetch of pages an exchange names but we never saw.

An OpenRTB request carries no article text, only ``site.page``. The bidder looks the URL up in
:class:`~service.serving.url_pages.UrlPages` (pages ranked through /v1/match or the tag with their
URL, and pages fetched here); when the URL is unknown it calls :meth:`PageFetcher.offer` —
synchronous, constant time, never a network call — and bids on the request's own signals.
:meth:`PageFetcher.run`, a task of the app's lifespan, fetches offered URLs one at a time,
outside every request's ``tmax``:

- only ``http``/``https``, default ports or any port on an allowlisted host;
- the host's addresses must all be public: private, loopback, link-local, multicast, reserved
  and unspecified addresses are refused unless the host is in ``fetch_allow_hosts`` (for tests);
  every redirect hop is checked again, at most ``fetch_max_redirects`` of them;
- robots.txt is obeyed (our user agent ``admatch-bot``; a robots.txt that cannot be read allows,
  as RFC 9309 says for 4xx, and refuses for 5xx and network errors);
- at most ``fetch_max_bytes`` are read and each fetch takes at most ``fetch_timeout_s``.

A fetched page is stored in :class:`UrlPages` and offered to the analysis queue under the same page
key the bidder computes for it, so the next request for the URL is ranked from its text, from the
page cache and, once a worker encoded it, with its meaning. Each URL is fetched at most once per
``dedupe_s`` across processes (``SET NX`` on ``am:urlfetch:<hash>``).

Known gap: the address check resolves the name before httpx connects, so a DNS answer that
changes between the two (rebinding) is not caught.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from cachetools import TTLCache

from matching.text import html_to_text
from matching.types import Page
from service.resilience.redis_guard import STORE_DOWN
from service.serving.url_pages import MAX_TEXT_CHARS, MAX_TITLE_CHARS, KnownPage, UrlPages, url_hash
from service.store import keys

log = logging.getLogger(__name__)

USER_AGENT = "admatch-bot/1.0 (+contextual ads; obeys robots.txt)"
QUEUE_URLS = 1024


def fetch_claim_key(url: str) -> str:
    return f"{keys.PREFIX}urlfetch:{url_hash(url)}"


class Refused(Exception):
    """The URL may not be fetched (scheme, address, robots.txt, size, status)."""


def _public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%")[0])
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int = 2_000_000
    timeout_s: float = 5.0
    max_redirects: int = 3
    allow_hosts: tuple[str, ...] = ()


class PageFetcher:
    def __init__(self, pages: UrlPages, offer: Callable[[str, Page], None] | None, limits: FetchLimits, *,
                 dedupe_s: float = 3600,
                 resolve: Callable[[str], Awaitable[list[str]]] | None = None) -> None:
        self.pages = pages
        self._offer = offer
        self.limits = limits
        self._dedupe = max(1, int(dedupe_s))
        self._queue: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._offered: TTLCache[str, bool] = TTLCache(maxsize=QUEUE_URLS * 8, ttl=dedupe_s)
        self._robots: TTLCache[str, RobotFileParser | None] = TTLCache(maxsize=1000, ttl=3600)
        self._resolve = resolve or resolve_in_thread
        self.fetched = 0
        self.refused = 0

    def offer(self, url: str) -> None:
        """Queue ``url`` for a background fetch unless offered recently (no I/O)."""
        if url in self._offered or len(self._queue) >= QUEUE_URLS:
            return
        self._offered[url] = True
        self._queue[url] = None
        self._wake.set()

    async def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(f"{url}: only http(s) URLs with a host are fetched")
        host = parts.hostname.lower()
        if host in self.limits.allow_hosts:
            return
        if parts.port not in (None, 80, 443):
            raise Refused(f"{url}: non-default port")
        addrs = await self._resolve(host)
        if not addrs or not all(_public(a) for a in addrs):
            raise Refused(f"{url}: {host} resolves to a non-public address")

    async def _get(self, client: httpx.AsyncClient, url: str) -> tuple[int, str, bytes]:
        """Follow at most max_redirects redirects, checking each hop; (status, final url, body)."""
        for _ in range(self.limits.max_redirects + 1):
            await self._check_host(url)
            async with client.stream("GET", url) as resp:
                if resp.is_redirect and "location" in resp.headers:
                    url = urljoin(url, resp.headers["location"])
                    continue
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > self.limits.max_bytes:
                        raise Refused(f"{url}: larger than {self.limits.max_bytes} bytes")
                return resp.status_code, url, bytes(body)
        raise Refused(f"{url}: more than {self.limits.max_redirects} redirects")

    async def _allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser: RobotFileParser | None = RobotFileParser()
            try:
                status, _, body = await self._get(client, origin + "/robots.txt")
            except (httpx.HTTPError, Refused):
                parser = None  # unreachable: do not crawl
            else:
                assert parser is not None
                if status >= 500:
                    parser = None
                elif status >= 400:
                    parser.parse([])  # no robots.txt: everything allowed
                else:
                    parser.parse(body.decode("utf-8", "replace").splitlines())
            self._robots[origin] = parser
        robots = self._robots[origin]
        return robots is not None and robots.can_fetch(USER_AGENT, url)

    async def fetch(self, client: httpx.AsyncClient, url: str) -> KnownPage | None:
        """Fetch and store one page; None when refused or not a page. Raises httpx errors."""
        if not await self._allowed(client, url):
            raise Refused(f"{url}: disallowed by robots.txt")
        status, _, body = await self._get(client, url)
        if status != 200:
            raise Refused(f"{url}: HTTP {status}")
        doc = html_to_text(body.decode("utf-8", "replace"))
        page = KnownPage(url=url, title=doc.title[:MAX_TITLE_CHARS], text=doc.text[:MAX_TEXT_CHARS])
        if not (page.title or page.text).strip():
            return None
        await self.pages.put(page)
        if self._offer is not None:
            self._offer(page.key, page.page())
        return page

    async def _claim(self, url: str) -> bool:
        try:
            return bool(await self.pages.r.set(fetch_claim_key(url), "1", nx=True, ex=self._dedupe))
        except STORE_DOWN:
            return False

    async def drain(self, client: httpx.AsyncClient) -> None:
        while self._queue:
            url = next(iter(self._queue))
            del self._queue[url]
            if not await self._claim(url):
                continue
            try:
                async with asyncio.timeout(self.limits.timeout_s):
                    await self.fetch(client, url)
                self.fetched += 1
            except (Refused, httpx.HTTPError, TimeoutError, OSError, UnicodeError, ValueError) as e:
                self.refused += 1
                log.info("page not fetched: %s", e)
            except STORE_DOWN:
                pass

    async def run(self) -> None:
        """Fetch offered URLs until cancelled. The HTTP client is made at the first URL, its TLS
        context in a thread: loading the CA bundle takes a few hundred ms of CPU, which on the event
        loop would hold up every request (and Redis replies) while the app starts."""
        await self._wake.wait()
        tls = await asyncio.to_thread(ssl.create_default_context)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.limits.timeout_s), follow_redirects=False,
                                     verify=tls, headers={"User-Agent": USER_AGENT}) as client:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.drain(client)


def _resolve(host: str) -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]
    except OSError:
        return []




async def resolve_in_thread(host: str) -> list[str]:
    """The host's addresses, resolved off the event loop."""
    return await asyncio.to_thread(_resolve, host)
