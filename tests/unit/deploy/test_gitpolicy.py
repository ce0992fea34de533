"""Which Git URLs and commits are accepted, on the registry and on hosts alike."""

from __future__ import annotations

import pytest

from deploy.gitpolicy import GitPolicyError, check_commit, check_url, git_options, redact_url

HTTPS = ("https",)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("--upload-pack=touch /tmp/x", "not a repository URL"),
        ("-c core.sshCommand=x", "not a repository URL"),
        ("ext::sh -c id", "not a repository URL"),
        ("file:///srv/repo.git", "scheme 'file'"),
        ("/srv/repo.git", "not a scheme://host/path URL"),
        ("git@github.com:owner/repo.git", "not a scheme://host/path URL"),
        ("git://github.com/owner/repo.git", "scheme 'git'"),
        ("https://user:token@github.com/owner/repo.git", "credentials"),
        ("https://github.com/owner/repo.git?x=1", "no query"),
        ("https://github.com/a b", "not a repository URL"),
    ],
)
def test_hostile_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(GitPolicyError, match=why) as error:
        check_url(url, HTTPS)
    assert "token" not in str(error.value)


def test_allowed_urls_pass_and_options_allow_only_their_schemes() -> None:
    assert check_url("https://github.com/owner/repo.git", HTTPS)
    assert check_url("ssh://git@github.com/owner/repo.git", ("ssh",))
    assert git_options(("https",)) == [
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.https.allow=always",
    ]


@pytest.mark.parametrize("commit", ["HEAD", "main", "abc1234", "-o", "a" * 39, "g" * 40])
def test_only_full_commit_ids_pass(commit: str) -> None:
    with pytest.raises(GitPolicyError):
        check_commit(commit)


def test_full_ids_pass_lower_cased() -> None:
    assert check_commit("A" * 40) == "a" * 40
    assert check_commit("b" * 64) == "b" * 64


def test_redaction_drops_credentials_and_queries() -> None:
    assert redact_url("https://u:p@host/r.git?t=1") == "https://host/r.git"
