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


def parse_nested(flag: str, text: str) -> dict[str, Any]:
    """The AWS CLI's nested shorthand — `a=1,b={c=2,d=[{e=3},{e=4}]}` — or a JSON object."""
    stripped = text.strip()
    if stripped.startswith("{") and _looks_like_json(stripped):
        value = _json(flag, stripped)
        if not isinstance(value, dict):
            raise ClientError(f"{flag}: expected a JSON object")
        return value
    reader = _Reader(flag, stripped)
    result = reader.pairs(end="")
    if not result:
        raise ClientError(f"{flag}: a value is required")
    return result


def _looks_like_json(text: str) -> bool:
    return text.startswith('{"') or text.startswith("{ ") or text == "{}"


class _Reader:
    def __init__(self, flag: str, text: str) -> None:
        self.flag, self.text, self.at = flag, text, 0

    def fail(self, what: str) -> ClientError:
        return ClientError(f"{self.flag}: {what} at character {self.at + 1}")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def pairs(self, end: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.peek() != end:
            key = self.scalar("=")
            if self.peek() != "=" or not key:
                raise self.fail("expected key=value")
            self.at += 1
            result[key] = self.value(end)
            if self.peek() == ",":
                self.at += 1
            elif self.peek() != end:
                raise self.fail(f"expected , or {end or 'the end'}")
        return result

    def value(self, end: str) -> Any:
        if self.peek() == "{":
            self.at += 1
            nested = self.pairs("}")
            self.at += 1
            return nested
        if self.peek() == "[":
            self.at += 1
            items = []
            while self.peek() != "]":
                if not self.peek():
                    raise self.fail("expected ]")
                items.append(self.value("]"))
                if self.peek() == ",":
                    self.at += 1
            self.at += 1
            return items
        return self.scalar(",}]" if end else ",")

    def scalar(self, stops: str) -> str:
        start = self.at
        while self.peek() and self.peek() not in stops:
            self.at += 1
        return self.text[start : self.at].strip()
