"""Validation of user-chosen names, with CodeDeploy's limits (≤ 100 chars of [A-Za-z0-9._+=,@-])."""

from __future__ import annotations

import re

from services.core.errors import InvalidArgument

_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}\Z")
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}\Z")


def check_name(field: str, value: str) -> str:
    """Return `value` if it is a valid application/group/config name, else raise naming `field`."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    if not _NAME.match(value):
        raise InvalidArgument(
            f"{field} {value!r} is invalid: use 1-100 characters of letters, digits and ._+=,@-"
        )
    return value


def check_instance_name(field: str, value: str) -> str:
    """Return `value` if it is a valid instance name."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    if not _INSTANCE_NAME.match(value):
        raise InvalidArgument(
            f"{field} {value!r} is invalid: use 1-100 characters of letters, digits and ._+=,@-"
        )
    return value


MAX_DESCRIPTION = 256
"""CodeDeploy's limit on a deployment's or revision's description."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_text(field: str, value: str, limit: int = MAX_DESCRIPTION) -> str:
    """Free text (descriptions, tag values): at most `limit` characters, no control characters
    but tab and newline (they corrupt logs and some databases refuse NUL)."""
    if len(value) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise InvalidArgument(f"{field} contains a control character")
    return value
