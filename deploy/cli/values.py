"""Flag values several nouns take: tags and tag filters, times, and the pages of a list verb
(the AWS CLI's --max-items and NextToken)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from deploy.cli import load_balancing
from deploy.cli.shorthand import parse_list, require
from deploy.errors import ClientError
from deploy.v1 import common_pb2

Result = dict[str, Any] | None


def tag_filters(flag: str, values: list[str] | None) -> list[common_pb2.TagFilter]:
    return [load_balancing.tag_filter(flag, item) for item in parse_list(flag, values or [])]


def tags(flag: str, values: list[str] | None) -> list[common_pb2.Tag]:
    tags = []
    for item in parse_list(flag, values or []):
        key, value = require(flag, item, "Key", "Value")
        tags.append(common_pb2.Tag(key=key, value=value))
    return tags


def parse_time(what: str, value: str) -> datetime:
    """An ISO-8601 time (UTC when it names no zone) or seconds since the epoch."""
    try:
        moment = (
            datetime.fromtimestamp(float(value), UTC)
            if value.replace(".", "", 1).isdigit()
            else datetime.fromisoformat(value)
        )
    except ValueError:
        raise ClientError(f"{what} {value!r} is not a time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def every_page(
    call: Callable[[Any], Any],
    request: Any,
    items: str,
    max_items: int | None,
    page_limit: int = 100,
) -> tuple[list[Any], str]:
    """Follow nextToken like the AWS CLI, `page_limit` at a time; with --max-items, stop
    there. The `items` of the pages, and the token of what is left ("" when nothing is)."""
    if max_items is not None and max_items < 1:
        raise ClientError("--max-items must be 1 or more")
    found: list[Any] = []
    while True:
        if max_items is not None:
            request.max_items = min(page_limit, max_items - len(found))
        response = call(request)
        found.extend(getattr(response, items))
        if not response.next_token or (max_items is not None and len(found) >= max_items):
            return found, str(response.next_token)
        request.next_token = response.next_token


def with_next_token(result: dict[str, Any], token: str) -> Result:
    """`result`, with NextToken when a page is left (the AWS CLI's --max-items output)."""
    return {**result, "NextToken": token} if token else result
