"""Which Git repositories and commits a revision may name, and how git is run so that nobody's
string is ever read as an option or reaches a transport the operator did not allow.

Shared by the registry (which fetches every Git revision it registers) and the agent (which
fetches the commit itself unless its group fetches through the registry): both run git with the
caller's URL, the agent as root, so both check the same things.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

COMMIT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
"""A full commit id: SHA-1 (40 hex) or SHA-256 (64 hex) repositories; never a ref or an option."""
DEFAULT_ALLOWED_SCHEMES = ("https",)
SUPPORTED_SCHEMES = ("https", "http", "git", "ssh")
"""What an operator may allow. Never file:// or local paths (they read the server's own disk)
and never ext:: (it runs a command)."""
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class GitPolicyError(ValueError):
    """A repository URL, commit id or scheme list that OpenDeploy refuses; the message says why
    and never contains the URL's credentials."""


def check_commit(commit: str) -> str:
    """The commit id, lower-cased, if it is a full SHA-1 or SHA-256 id."""
    lowered = commit.lower()
    if not COMMIT_ID.match(lowered):
        raise GitPolicyError(f"{commit[:80]!r} is not a full commit id (40 or 64 hex digits)")
    return lowered


def check_schemes(schemes: str | Iterable[object]) -> tuple[str, ...]:
    """Validate an operator's `git_allowed_schemes` (a list, or a comma-separated string)."""
    items = schemes.split(",") if isinstance(schemes, str) else list(schemes)
    checked = tuple(dict.fromkeys(str(s).strip().lower() for s in items if str(s).strip()))
    bad = [s for s in checked if s not in SUPPORTED_SCHEMES]
    if bad or not checked:
        raise GitPolicyError(
            f"git_allowed_schemes: {', '.join(bad) or '(none)'} not allowed; "
            f"choose from {', '.join(SUPPORTED_SCHEMES)}"
        )
    return checked


def check_url(url: str, allowed: Iterable[str]) -> str:
    """The URL if git may fetch it: scheme://host/path with an allowed scheme and no
    credentials (they would be stored with the revision and shown to everyone who reads it)."""
    allowed = tuple(allowed)
    if not url or url.startswith("-") or _UNSAFE_CHARACTERS.search(url):
        raise GitPolicyError(f"{redact_url(url)!r} is not a repository URL")
    parts = urlsplit(url)
    if "://" in url and parts.scheme.lower() not in allowed:
        raise GitPolicyError(
            f"{redact_url(url)!r}: scheme {parts.scheme!r} is not allowed here "
            f"(git_allowed_schemes: {', '.join(allowed)})"
        )
    if "://" not in url or not parts.hostname:
        raise GitPolicyError(
            f"{redact_url(url)!r} is not a scheme://host/path URL (local paths and scp-style "
            "addresses are not accepted)"
        )
    if parts.password is not None or (parts.username and parts.scheme.lower() != "ssh"):
        raise GitPolicyError(
            f"{redact_url(url)!r}: credentials in a repository URL are not accepted; configure "
            "a git credential helper on the registry and hosts instead"
        )
    if parts.query or parts.fragment:
        raise GitPolicyError(f"{redact_url(url)!r}: a repository URL takes no query or fragment")
    return url


def redact_url(url: str) -> str:
    """The URL without user information, query or fragment: safe to log and show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if not parts.netloc:
        return url[:200]
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))[:200]


def git_options(allowed: Iterable[str]) -> list[str]:
    """`git` options (before the subcommand) that refuse every transport but the allowed ones."""
    options = ["-c", "protocol.allow=never"]
    for scheme in allowed:
        options += ["-c", f"protocol.{scheme}.allow=always"]
    return options


def git_environment() -> dict[str, str]:
    """This process's environment (ssh keys, credential helpers) for git, which never prompts
    and treats every URL as coming from a user."""
    return {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PROTOCOL_FROM_USER": "0",
    }
