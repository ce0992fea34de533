"""Tags and tag filters, and CodeDeploy's matching rule (any filter in a list matches: OR)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.core.errors import InvalidArgument
from services.core.names import check_text


class TagFilterType(StrEnum):
    KEY_ONLY = "KEY_ONLY"
    VALUE_ONLY = "VALUE_ONLY"
    KEY_AND_VALUE = "KEY_AND_VALUE"


@dataclass(frozen=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True)
class TagFilter:
    key: str
    value: str
    type: TagFilterType

    def matches(self, tag: Tag) -> bool:
        if self.type is TagFilterType.KEY_ONLY:
            return tag.key == self.key
        if self.type is TagFilterType.VALUE_ONLY:
            return tag.value == self.value
        return tag.key == self.key and tag.value == self.value


MAX_TAGS = 50
"""Tags per instance (CodeDeploy's limit), and per request."""
MAX_TAG_FILTERS = 50


def check_tags(field: str, tags: Iterable[Tag]) -> list[Tag]:
    """Tags need a key and a value (CodeDeploy: key ≤ 128, value ≤ 256 characters); at most 50."""
    checked = list(tags)
    if len(checked) > MAX_TAGS:
        raise InvalidArgument(f"{field}: at most {MAX_TAGS} tags per instance, not {len(checked)}")
    for i, tag in enumerate(checked):
        if not tag.key:
            raise InvalidArgument(f"{field}[{i}].Key is required")
        check_text(f"{field}[{i}].Key", tag.key, 128)
        check_text(f"{field}[{i}].Value", tag.value, 256)
    keys = [t.key for t in checked]
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"{field}: a Key is given twice")
    return checked


def check_tag_filters(field: str, filters: Iterable[TagFilter]) -> list[TagFilter]:
    """KEY_ONLY needs a key, VALUE_ONLY a value, KEY_AND_VALUE both; lengths as for tags."""
    checked = list(filters)
    if len(checked) > MAX_TAG_FILTERS:
        raise InvalidArgument(f"{field}: at most {MAX_TAG_FILTERS} tag filters")
    for i, f in enumerate(checked):
        check_text(f"{field}[{i}].Key", f.key, 128)
        check_text(f"{field}[{i}].Value", f.value, 256)
        if f.type is not TagFilterType.VALUE_ONLY and not f.key:
            raise InvalidArgument(f"{field}[{i}].Key is required for Type {f.type}")
        if f.type is not TagFilterType.KEY_ONLY and not f.value:
            raise InvalidArgument(f"{field}[{i}].Value is required for Type {f.type}")
    return checked


def matches_any(filters: Iterable[TagFilter], tags: Iterable[Tag]) -> bool:
    """True if any filter matches any tag (CodeDeploy's flat tag-filter list)."""
    tag_list = list(tags)
    return any(f.matches(t) for f in filters for t in tag_list)
