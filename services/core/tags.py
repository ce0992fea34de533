"""Tags and tag filters, and CodeDeploy's matching rule (any filter in a list matches: OR)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.core.errors import InvalidArgument


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


def check_tags(field: str, tags: Iterable[Tag]) -> list[Tag]:
    """Tags need a key and a value (CodeDeploy: key ≤ 128, value ≤ 256 characters)."""
    checked = list(tags)
    for i, tag in enumerate(checked):
        if not tag.key or len(tag.key) > 128:
            raise InvalidArgument(f"{field}[{i}].Key must be 1-128 characters")
        if len(tag.value) > 256:
            raise InvalidArgument(f"{field}[{i}].Value must be at most 256 characters")
    return checked


def check_tag_filters(field: str, filters: Iterable[TagFilter]) -> list[TagFilter]:
    """KEY_ONLY needs a key, VALUE_ONLY a value, KEY_AND_VALUE both."""
    checked = list(filters)
    for i, f in enumerate(checked):
        if f.type is not TagFilterType.VALUE_ONLY and not f.key:
            raise InvalidArgument(f"{field}[{i}].Key is required for Type {f.type}")
        if f.type is not TagFilterType.KEY_ONLY and not f.value:
            raise InvalidArgument(f"{field}[{i}].Value is required for Type {f.type}")
    return checked


def matches_any(filters: Iterable[TagFilter], tags: Iterable[Tag]) -> bool:
    """True if any filter matches any tag (CodeDeploy's flat tag-filter list)."""
    tag_list = list(tags)
    return any(f.matches(t) for f in filters for t in tag_list)
