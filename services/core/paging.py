"""Pages of a list answer: every list request has a bounded page size, and a token that says
where the next page starts."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from services.core.errors import InvalidArgument

T = TypeVar("T")
MAX_PAGE = 1000
_PREFIX = "p1:"


def page_of(items: Sequence[T], token: str, max_items: int, default: int) -> tuple[list[T], str]:
    """The page of `items` (in their order) that `token` starts, of `max_items` (0: `default`)
    items at most, and the token of the next page ("" after the last). InvalidArgument names
    maxItems or nextToken."""
    size = page_size(max_items, default)
    start = _offset(token) if token else 0
    page = list(items[start : start + size])
    more = start + size < len(items)
    return page, _token(start + size) if more else ""


def page_size(max_items: int, default: int) -> int:
    """`max_items`, or `default` for 0; InvalidArgument names maxItems out of bounds."""
    if max_items > MAX_PAGE:
        raise InvalidArgument(f"maxItems must be at most {MAX_PAGE}")
    if max_items < 0:
        raise InvalidArgument("maxItems must not be negative")
    return max_items or default


def _token(offset: int) -> str:
    return number_token(_PREFIX, offset)


def _offset(token: str) -> int:
    return token_number(_PREFIX, token, digits=12)


def number_token(prefix: str, number: int) -> str:
    """An opaque token that names a position (an offset, a row id) in a listing."""
    return base64.urlsafe_b64encode(f"{prefix}{number}".encode()).decode()


def token_number(prefix: str, token: str, digits: int) -> int:
    """The position a `number_token` with `prefix` names; InvalidArgument names nextToken
    when it is not one."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        text = ""
    value = text.removeprefix(prefix)
    if not text.startswith(prefix) or not value.isdigit() or len(value) > digits:
        raise InvalidArgument("nextToken is not one this service returned")
    return int(value)
