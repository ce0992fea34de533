"""URLs that callers give the server (webhooks): their form, and how they are shown and logged —
without user information or query values, where tokens live."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from services.core.errors import InvalidArgument

REDACTED = "REDACTED"


def check_http_url(field_name: str, url: str) -> str:
    """An http(s) URL with a host; InvalidArgument naming the field (URL redacted)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidArgument(f"{field_name} {redact_url(url)!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{field_name} {redact_url(url)!r} is not an http(s) URL")
    if port == 0 or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidArgument(f"{field_name} {redact_url(url)!r} is not an http(s) URL")
    return url


def redact_url(url: str) -> str:
    """The URL with user information and query values replaced by REDACTED (keys kept, so a
    person can still tell which URL it is)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    query = urlencode([(k, REDACTED) for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
