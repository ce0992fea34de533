"""Validation of user-chosen names, with CodeDeploy's limits (≤ 100 chars of [A-Za-z0-9._+=,@-])."""

from __future__ import annotations

import re

from services.core.errors import InvalidArgument

_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")


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
