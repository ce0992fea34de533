"""Parsing the AWS CLI's argument forms: shorthand `Key=a,Value=b` or JSON."""

from __future__ import annotations

import json
from typing import Any

from deploy.errors import ClientError


def parse_structure(flag: str, text: str) -> dict[str, Any]:
    """`a=1,b=2` or a JSON object → dict; a clear error naming the flag otherwise."""
    stripped = text.strip()
    if stripped.startswith("{"):
        value = _json(flag, stripped)
        if not isinstance(value, dict):
            raise ClientError(f"{flag}: expected a JSON object")
        return value
    result: dict[str, Any] = {}
    for part in _split(stripped):
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ClientError(f"{flag}: expected key=value pairs separated by commas, got {part!r}")
        result[key.strip()] = val.strip()
    if not result:
        raise ClientError(f"{flag}: a value is required")
    return result


def parse_list(flag: str, values: list[str]) -> list[dict[str, Any]]:
    """Several shorthand structures, or one JSON list."""
    if len(values) == 1 and values[0].strip().startswith("["):
        value = _json(flag, values[0])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ClientError(f"{flag}: expected a JSON list of objects")
        return value
    return [parse_structure(flag, v) for v in values]


def _json(flag: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"{flag}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def _split(text: str) -> list[str]:
    """Split on commas that start a new key=value pair (values may contain commas)."""
    parts: list[str] = []
    for piece in text.split(","):
        if parts and "=" not in piece:
            parts[-1] += "," + piece
        else:
            parts.append(piece)
    return [p for p in parts if p.strip()]


def require(flag: str, value: dict[str, Any], *keys: str) -> list[str]:
    """The named keys' values as strings; a clear error naming the first missing key."""
    missing = [k for k in keys if not str(value.get(k, "")).strip()]
    if missing:
        raise ClientError(f"{flag}: {missing[0]} is required")
    return [str(value[k]) for k in keys]
