"""Pages of list answers: bounded, complete, with tokens only the service makes."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidArgument
from services.core.paging import MAX_PAGE, page_of


def test_pages_cover_every_item_once() -> None:
    items = list(range(2501))
    seen, token = [], ""
    for _ in range(10):
        page, token = page_of(items, token, 0, MAX_PAGE)
        seen += page
        if not token:
            break
    assert seen == items


def test_page_size_is_bounded_and_named() -> None:
    assert page_of([1, 2, 3], "", 2, 100)[0] == [1, 2]
    with pytest.raises(InvalidArgument, match="maxItems must be at most 1000"):
        page_of([1], "", MAX_PAGE + 1, 100)


@pytest.mark.parametrize("token", ["x", "cDE6LTE=", "cDE6OTk5OTk5OTk5OTk5OTk5", "\x00"])
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument, match="nextToken"):
        page_of([1], token, 0, 100)
