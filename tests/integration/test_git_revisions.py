"""Revisions in Git, end to end on real agents: a commit served by `git daemon` deploys, an
owner/repo name resolves against the configured base URL, and hostile repositories or commits
are refused before git runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, cluster
from tests.harness import unique
from tests.integration.apps import App, bundle, installed
from tests.integration.gitserver import (
    GIT_AGENT_CONFIG,
    GIT_SERVER_ENV,
    deploy_git,
    git_repository,
    serve,
)

AGENTS = 2


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    with cluster(
        workdir, database_url, AGENTS, "git", env=GIT_SERVER_ENV, agent_config=GIT_AGENT_CONFIG
    ) as running:
        yield running


def test_a_git_commit_over_git_url_deploys_and_bad_commits_are_refused(
    running: Cluster, tmp_path: Path, git_daemon: tuple[Path, str]
) -> None:
    app = App(running)
    bare, commit = git_repository(tmp_path / "git", bundle(tmp_path / "v1", "1", app.dest))
    url = serve(git_daemon, bare)
    info = app.finished(deploy_git(app, url, commit), "Succeeded")
    assert info["revision"]["gitHubLocation"]["commitId"] == commit
    assert installed(app) == ["1"] * AGENTS
    for agent in running.agents:  # each host fetched the commit itself
        assert any((agent.root / "git-cache").iterdir()), agent.name

    missing = running.cli(
        "register-application-revision",
        "--application-name",
        app.name,
        "--github-location",
        f"repository={url},commitId={'0' * 40}",
    )
    assert missing.returncode == 254
    assert f"commitId {'0' * 40} does not exist" in missing.stderr
    no_repo = running.cli(
        "register-application-revision",
        "--application-name",
        app.name,
        "--github-location",
        f"repository={git_daemon[1]}nowhere.git,commitId={commit}",
    )
    assert no_repo.returncode == 254
    assert "could not be fetched" in no_repo.stderr


def test_owner_repo_resolves_against_the_configured_base_url(
    tmp_path: Path, database_url: str, git_daemon: tuple[Path, str]
) -> None:
    root, base_url = git_daemon
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    env = {"OPENDEPLOY_GIT_BASE_URL": base_url, **GIT_SERVER_ENV}
    with cluster(
        workdir, database_url, 1, "gitbase", env=env, agent_config=GIT_AGENT_CONFIG
    ) as base_cluster:
        app = App(base_cluster)
        source = bundle(tmp_path / "v1", "1", app.dest)
        bare, commit = git_repository(tmp_path / "git", source)
        repository = f"team/{unique('site')}"  # the daemon serves every database's run
        shutil.copytree(bare, root / repository)
        info = app.finished(deploy_git(app, repository, commit), "Succeeded")
        assert info["revision"]["gitHubLocation"]["repository"] == repository
        assert info["revision"]["gitHubLocation"]["cloneUrl"] == f"{base_url}{repository}"
        assert installed(app) == ["1"]


def test_hostile_git_repositories_and_commits_are_refused_before_git_runs(
    running: Cluster, tmp_path: Path, git_daemon: tuple[Path, str]
) -> None:
    """An option-looking repository never reaches git as an option, only allowed transports
    are fetched, credentials in a URL are neither accepted nor echoed, commits are full ids."""
    app = App(running)
    bare, commit = git_repository(tmp_path / "git", bundle(tmp_path / "v1", "1", app.dest))
    url = serve(git_daemon, bare)
    marker = tmp_path / "pwned"
    hostile = [
        (f"--upload-pack=touch {marker}", commit, "not a repository URL"),
        (f"ext::sh -c touch% {marker}", commit, "not a repository URL"),
        (f"file://{bare}", commit, "scheme 'file' is not allowed"),
        (str(bare), commit, "not a scheme://host/path URL"),
        (f"git://user:s3cr3t-token@127.0.0.1:1/{bare.name}", commit, "credentials"),
        (f"https://127.0.0.1:1/{bare.name}", commit, "scheme 'https' is not allowed"),
        (url, commit[:12], "not a full commit id"),
        (url, f"--output={marker}", "not a full commit id"),
    ]
    for repository, commit_id, message in hostile:
        result = running.cli(
            "register-application-revision",
            "--application-name",
            app.name,
            "--github-location",
            f"repository={repository},commitId={commit_id}",
        )
        assert result.returncode == 254, (repository, result.stdout)
        assert message in result.stderr, (repository, result.stderr)
        assert "s3cr3t-token" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not marker.exists()
    listed = app.ok("list-application-revisions", "--application-name", app.name)
    assert listed.get("revisions", []) == []
