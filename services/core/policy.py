"""IAM-shaped policy documents and their evaluation (pure).

A document is IAM's: `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"|"Deny",
"Action": "deploy:Get*" | [...], "Resource": "arn:opendeploy:deploy::application:web" | [...]}]}`.
Evaluation is IAM's too: an explicit Deny wins, otherwise any matching Allow, otherwise the call
is denied. `*` matches any run of characters and `?` one, in actions (case-insensitive, as IAM
compares them) and resources (case-sensitive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from services.core.errors import InvalidArgument

ARN_PREFIX = "arn:opendeploy:"
VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource"}
MAX_DOCUMENT = 6144
"""Characters, IAM's limit for a managed policy."""


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        return any(_pattern(a, True).fullmatch(action) for a in self.actions) and any(
            _pattern(r, False).fullmatch(resource) for r in self.resources
        )


def allowed(statements: Iterable[Statement], action: str, resource: str) -> bool:
    """IAM's rule: an explicit Deny wins; otherwise any matching Allow; otherwise no."""
    matching = [s for s in statements if s.matches(action, resource)]
    return bool(matching) and all(s.allow for s in matching)


@lru_cache(maxsize=1024)
def parse_document(text: str, field: str = "policyDocument") -> tuple[Statement, ...]:
    """The statements of a policy document; InvalidArgument names what is wrong. (Cached: every
    signed call reads its user's documents.)"""
    if len(text) > MAX_DOCUMENT:
        raise InvalidArgument(f"{field} is longer than {MAX_DOCUMENT} characters")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"{field} is not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"{field} must be a JSON object")
    unknown = set(document) - {"Version", "Statement", "Id"}
    if unknown:
        raise InvalidArgument(f"{field} has unknown key {sorted(unknown)[0]}")
    if document.get("Version", VERSIONS[0]) not in VERSIONS:
        raise InvalidArgument(f"{field}.Version must be one of {', '.join(VERSIONS)}")
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{field}.Statement must be a statement or a non-empty list")
    return tuple(_statement(item, f"{field}.Statement[{i}]") for i, item in enumerate(items))


def _statement(item: object, field: str) -> Statement:
    if not isinstance(item, dict):
        raise InvalidArgument(f"{field} must be an object")
    unknown = set(item) - STATEMENT_KEYS
    if unknown:
        raise InvalidArgument(f"{field} has unknown key {sorted(unknown)[0]}")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise InvalidArgument(f"{field}.Effect must be Allow or Deny")
    actions = _strings(item.get("Action"), f"{field}.Action")
    for action in actions:
        if action != "*" and not re.fullmatch(r"[a-z]+:[A-Za-z*?]+", action):
            raise InvalidArgument(f"{field}.Action {action!r} is not service:Operation")
    resources = _strings(item.get("Resource"), f"{field}.Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith(ARN_PREFIX):
            raise InvalidArgument(f"{field}.Resource {resource!r} must be * or {ARN_PREFIX}…")
    return Statement(effect == "Allow", actions, resources)


def _strings(value: object, field: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise InvalidArgument(f"{field} must be a string or a non-empty list of strings")
    return tuple(items)


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
