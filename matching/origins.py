"""Web origins (scheme://host[:port]) as a site token's allow-list holds them and as browsers send them.

Contract: :func:`normalise_origin` gives one spelling per origin (lower-case, default port dropped)
or raises ``ValueError`` saying what to change; :func:`request_origin` is the origin a request
came from — its ``Origin`` header, else its ``Referer``'s origin — or None when it names none.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, host: str, port: int | None) -> str:
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalise_origin(text: str) -> str:
    """``https://News.Example.com:443/`` → ``https://news.example.com``; ValueError for anything
    that is not an http(s) origin (a path, query, user name or missing host)."""
    raw = text.strip()
    try:
        u = urlsplit(raw)
        port = u.port
    except ValueError as e:
        raise ValueError(f"{raw!r} is not a URL origin ({e}); write it as https://news.example.com") from None
    if u.scheme not in _DEFAULT_PORTS or not u.hostname:
        raise ValueError(f"{raw!r} is not an http(s) origin; write it as https://news.example.com")
    if u.path not in ("", "/") or u.query or u.fragment or u.username or u.password:
        raise ValueError(f"{raw!r} has more than scheme, host and port; an origin is like "
                         "https://news.example.com (no path)")
    return _origin(u.scheme, u.hostname.rstrip("."), port)


def request_origin(origin: str | None, referer: str | None) -> str | None:
    """The origin of a browser request, from ``Origin`` or else ``Referer``; None when neither
    names one (``Origin: null`` from sandboxed frames and file pages names none)."""
    for value in (origin, referer):
        if not value or value == "null":
            continue
        try:
            u = urlsplit(value)
            port = u.port
        except ValueError:
            continue
        if u.scheme in _DEFAULT_PORTS and u.hostname:
            return _origin(u.scheme, u.hostname.rstrip("."), port)
    return None
