"""Revisions in S3, end to end on real agents: push to a real S3-compatible server, deploy,
verify the digest on every host, and refuse what is not there."""

from __future__ import annotations

import json
import os
import re
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.agents import start_agent, wait_online
from tests.cluster import Cluster, cluster, open_gate
from tests.harness import start_server, unique
from tests.integration.apps import App, bundle, installed
from tests.integration.gitserver import GIT_SERVER_ENV, deploy_git, git_repository, serve
from tests.processes import wait_until

AGENTS = 2


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, s3_env: dict[str, str]
) -> Iterator[Cluster]:
    with cluster(
        tmp_path_factory.mktemp("cluster"), database_url, AGENTS, "rev", env=s3_env
    ) as running:
        yield running


@pytest.fixture
def bucket(s3_env: dict[str, str]) -> str:
    name = unique("bundles")
    s3(s3_env).create_bucket(Bucket=name)
    return name


def s3(env: dict[str, str]) -> object:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def push_s3(app: App, source: Path, bucket: str, key: str) -> dict[str, str]:
    pushed = app.ok(
        "push",
        "--application-name",
        app.name,
        "--source",
        str(source),
        "--s3-location",
        f"s3://{bucket}/{key}",
    )
    assert f"--s3-location bucket={bucket},key={key},bundleType=zip" in pushed["deployCommand"]
    location: dict[str, str] = pushed["revision"]["s3Location"]
    return location


def deploy_s3(app: App, bucket: str, key: str, config: str = "CodeDeployDefault.AllAtOnce") -> str:
    created = app.ok(
        "create-deployment",
        "--application-name",
        app.name,
        "--deployment-group-name",
        app.group,
        "--deployment-config-name",
        config,
        "--s3-location",
        f"bucket={bucket},key={key},bundleType=zip",
    )
    return str(created["deploymentId"])


def test_a_revision_pushed_to_s3_deploys_to_every_host(
    running: Cluster, tmp_path: Path, bucket: str
) -> None:
    app = App(running)
    location = push_s3(app, bundle(tmp_path / "v1", "1", app.dest), bucket, "app/v1.zip")
    assert location["digest"].startswith("sha256:")
    deployment_id = deploy_s3(app, bucket, "app/v1.zip")
    info = app.finished(deployment_id, "Succeeded")
    assert info["revision"]["s3Location"]["digest"] == location["digest"]
    assert installed(app) == ["1"] * AGENTS


def two_revisions(app: App, tmp_path: Path) -> tuple[Path, Path, Path, Path, Path]:
    """v1, whose ApplicationStop records each host it runs on in `stops`, and v2, whose
    BeforeInstall records the host in `installing` and waits at `gate`:
    (v1, v2, stops, installing, gate)."""
    stops, installing, gate = tmp_path / "stops", tmp_path / "installing", tmp_path / "gate"
    os.mkfifo(gate)
    first = bundle(tmp_path / "v1", "1", app.dest, started=stops, gated_event="ApplicationStop")
    second = bundle(tmp_path / "v2", "2", app.dest, gate=gate, started=installing)
    return first, second, stops, installing, gate


def refused_before_stop(
    app: App, deployment_id: str, stops: Path, installing: Path, *messages: str
) -> None:
    """The host after the first failed: its ApplicationStop refused the changed bundle
    (InvalidBundle, `messages`), and v1 was stopped on the first host only. (Whether the
    deployment fails follows OneAtATime's rule: not when that host is the last.)"""
    app.running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
    info = app.info(deployment_id)
    assert info["deploymentOverview"]["Failed"] == 1, info
    first_host = installing.read_text().split()[0]
    refused = next(
        app.target(deployment_id, a.name) for a in app.running.agents if a.name != first_host
    )
    stop = refused["lifecycleEvents"][0]
    assert (stop["lifecycleEventName"], stop["status"]) == ("ApplicationStop", "Failed"), info
    assert stop["diagnostics"]["errorCode"] == "InvalidBundle"
    for message in (*messages, "the running application was not stopped"):
        assert message in stop["diagnostics"]["message"]
    assert stops.read_text().split() == [first_host], "v1 was stopped where v2 cannot install"


def test_an_object_changed_after_registration_is_refused_before_the_application_stops(
    running: Cluster, tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    app = App(running)
    first, second, stops, installing, gate = two_revisions(app, tmp_path)
    push_s3(app, first, bucket, "v1.zip")
    app.finished(deploy_s3(app, bucket, "v1.zip"), "Succeeded")
    digest = push_s3(app, second, bucket, "app.zip")["digest"]
    deployment_id = deploy_s3(app, bucket, "app.zip", "CodeDeployDefault.OneAtATime")
    wait_until(installing.exists, 60, "the first host to fetch v2 and reach BeforeInstall")
    # v2's object is replaced behind the registry's back (a racing upload, or tampering):
    # the next host fetches it before it stops v1, and refuses it.
    s3(s3_env).put_object(Bucket=bucket, Key="app.zip", Body=b"not the registered bundle")  # type: ignore[attr-defined]
    open_gate(gate, 1)
    refused_before_stop(
        app, deployment_id, stops, installing, digest, "changed after it was registered"
    )


def bytes_read(running: Cluster) -> float:
    """opendeploy_bundle_bytes_total{direction="in"}: bundle bytes the registry took in."""
    text = urllib.request.urlopen(running.server.metrics_url, timeout=5).read().decode()
    found = re.search(r'^opendeploy_bundle_bytes_total\{direction="in"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_an_unchanged_s3_object_is_not_read_again_when_deployed_again(
    running: Cluster, tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    app = App(running)
    first = push_s3(app, bundle(tmp_path / "v1", "1", app.dest), bucket, "same.zip")
    before = bytes_read(running)
    for _ in range(2):  # each create-deployment registers the revision again: a HEAD only
        app.finished(deploy_s3(app, bucket, "same.zip"), "Succeeded")
    assert bytes_read(running) == before

    # The object changes under the same key: its new ETag has it read again, once.
    changed = bundle(tmp_path / "v2", "2", app.dest)
    second = push_s3(app, changed, bucket, "same.zip")
    assert second["digest"] != first["digest"]
    resized = s3(s3_env).head_object(Bucket=bucket, Key="same.zip")["ContentLength"]  # type: ignore[attr-defined]
    assert bytes_read(running) == before + resized
    info = app.finished(deploy_s3(app, bucket, "same.zip"), "Succeeded")
    assert info["revision"]["s3Location"]["digest"] == second["digest"]
    assert bytes_read(running) == before + resized
    assert installed(app) == ["2"] * AGENTS


def test_a_missing_s3_object_is_refused_at_registration_naming_it(
    running: Cluster, bucket: str
) -> None:
    app = App(running)
    refused = running.cli(
        "register-application-revision",
        "--application-name",
        app.name,
        "--s3-location",
        f"bucket={bucket},key=nope.zip,bundleType=zip",
    )
    assert refused.returncode == 254
    assert f"s3://{bucket}/nope.zip does not exist" in refused.stderr
    assert "NOT_FOUND" in refused.stderr
    missing_bucket = running.cli(
        "create-deployment",
        "--application-name",
        app.name,
        "--deployment-group-name",
        app.group,
        "--s3-location",
        "bucket=no-such-bucket-here,key=a.zip,bundleType=zip",
    )
    assert missing_bucket.returncode == 254
    assert "s3://no-such-bucket-here/a.zip does not exist" in missing_bucket.stderr
    assert (
        app.ok(
            "list-deployments", "--application-name", app.name, "--deployment-group-name", app.group
        )["deployments"]
        == []
    )


def bundle_bytes_sent(running: Cluster) -> float:
    metrics = urllib.request.urlopen(running.server.metrics_url, timeout=5).read().decode()
    line = next(
        (
            row
            for row in metrics.splitlines()
            if row.startswith('opendeploy_bundle_bytes_total{direction="out"}')
        ),
        "",
    )
    return float(line.split()[-1]) if line else 0.0


def test_a_revision_deployed_again_is_not_downloaded_again(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    digest = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(digest, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    sent = bundle_bytes_sent(running)
    assert sent > 0
    again = app.deploy(digest, "CodeDeployDefault.AllAtOnce")
    app.finished(again, "Succeeded")
    assert bundle_bytes_sent(running) == sent  # every host took it from its cache
    for agent in running.agents:
        log = (agent.root.parent / "agent.log").read_text()
        assert "bundle taken from the cache" in log, agent.name
    assert installed(app) == ["1"] * AGENTS


def tar_bundle(source: Path, target: Path, gzipped: bool) -> Path:
    with tarfile.open(target, "w:gz" if gzipped else "w") as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, path.relative_to(source).as_posix(), recursive=False)
    return target


@pytest.mark.parametrize("kind", ["tar", "tgz"])
def test_tar_and_tgz_bundles_in_s3_deploy(
    running: Cluster, tmp_path: Path, bucket: str, s3_env: dict[str, str], kind: str
) -> None:
    app = App(running)
    archive = tar_bundle(
        bundle(tmp_path / "v1", "1", app.dest), tmp_path / f"v1.{kind}", kind == "tgz"
    )
    s3(s3_env).upload_file(str(archive), bucket, f"v1.{kind}")  # type: ignore[attr-defined]
    deployment_id = app.ok(
        "create-deployment",
        "--application-name",
        app.name,
        "--deployment-group-name",
        app.group,
        "--deployment-config-name",
        "CodeDeployDefault.AllAtOnce",
        "--s3-location",
        f"bucket={bucket},key=v1.{kind},bundleType={kind}",
    )["deploymentId"]
    app.finished(deployment_id, "Succeeded")
    assert installed(app) == ["1"] * AGENTS


def test_bundles_of_the_wrong_type_or_without_appspec_are_refused_at_registration(
    running: Cluster, tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    app = App(running)
    source = bundle(tmp_path / "v1", "1", app.dest)
    client = s3(s3_env)
    client.upload_file(str(tar_bundle(source, tmp_path / "v1.tar", False)), bucket, "v1.tar")  # type: ignore[attr-defined]
    (source / "appspec.yml").unlink()
    client.upload_file(str(tar_bundle(source, tmp_path / "bare.tgz", True)), bucket, "bare.tgz")  # type: ignore[attr-defined]
    for location, message in [
        (
            f"bucket={bucket},key=v1.tar,bundleType=zip",
            f"s3://{bucket}/v1.tar is not a zip archive",
        ),
        (
            f"bucket={bucket},key=v1.tar,bundleType=tgz",
            f"s3://{bucket}/v1.tar is not a tgz archive",
        ),
        (f"bucket={bucket},key=bare.tgz,bundleType=tgz", "has no appspec.yml at its root"),
    ]:
        refused = running.cli(
            "register-application-revision",
            "--application-name",
            app.name,
            "--s3-location",
            location,
        )
        assert refused.returncode == 254, location
        assert "INVALID_ARGUMENT" in refused.stderr and message in refused.stderr, refused.stderr


def test_revision_records_list_sort_filter_and_batch_get(
    running: Cluster, tmp_path: Path, bucket: str
) -> None:
    app = App(running)
    source = bundle(tmp_path / "v1", "1", app.dest)
    push_s3(app, source, bucket, "releases/a.zip")
    push_s3(app, source, bucket, "releases/b.zip")
    push_s3(app, source, bucket, "other/c.zip")
    registry_digest = app.push(source)
    app.finished(deploy_s3(app, bucket, "releases/b.zip"), "Succeeded")

    def listed(*flags: str) -> list[str]:
        revisions = app.ok("list-application-revisions", "--application-name", app.name, *flags)
        return [
            r.get("s3Location", {}).get("key") or r["registryLocation"]["digest"]
            for r in revisions["revisions"]
        ]

    assert listed() == ["releases/a.zip", "releases/b.zip", "other/c.zip", registry_digest]
    assert listed("--sort-order", "descending") == [
        registry_digest,
        "other/c.zip",
        "releases/b.zip",
        "releases/a.zip",
    ]
    assert listed("--s3-bucket", bucket, "--s3-key-prefix", "releases/") == [
        "releases/a.zip",
        "releases/b.zip",
    ]
    assert listed("--deployed", "include") == ["releases/b.zip"]
    assert "releases/b.zip" not in listed("--deployed", "exclude")
    assert listed("--sort-by", "lastUsedTime")[0] == "releases/b.zip"  # never used: last

    used = app.ok(
        "get-application-revision",
        "--application-name",
        app.name,
        "--s3-location",
        f"bucket={bucket},key=releases/b.zip,bundleType=zip",
    )["revisionInfo"]
    assert used["deploymentGroups"] == [app.group]
    assert used["firstUsedTime"] and used["lastUsedTime"]

    batch = app.ok(
        "batch-get-application-revisions",
        "--application-name",
        app.name,
        "--revisions",
        json.dumps(
            [
                {
                    "revisionType": "S3",
                    "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip"},
                }
                for key in ("releases/a.zip", "releases/b.zip")
            ]
        ),
    )
    infos = [r["genericRevisionInfo"] for r in batch["revisions"]]
    assert [i.get("deploymentGroups", []) for i in infos] == [[], [app.group]]


def test_hosts_without_s3_access_fetch_through_the_registry_when_the_group_says_so(
    tmp_path: Path,
    database_url: str,
    s3_env: dict[str, str],
    bucket: str,
    git_daemon: tuple[Path, str],
) -> None:
    env = {**s3_env, **GIT_SERVER_ENV}
    server, address = start_server(tmp_path, database_url, env=env)  # the registry has S3
    agent = start_agent(tmp_path, address, "no-s3-1", {"cluster": "no-s3"})  # the host has not
    isolated = Cluster(tmp_path, address, server, [agent], env=s3_env)
    try:
        wait_online(address, [agent.name])
        app = App(isolated, "--fetch-revisions-through-registry")
        assert app.group_info()["fetchRevisionsThroughRegistry"] is True
        push_s3(app, bundle(tmp_path / "v1", "1", app.dest), bucket, "proxied.zip")
        app.finished(deploy_s3(app, bucket, "proxied.zip"), "Succeeded")
        assert installed(app) == ["1"]
        bare, commit = git_repository(tmp_path / "git", bundle(tmp_path / "v2", "2", app.dest))
        app.finished(deploy_git(app, serve(git_daemon, bare), commit), "Succeeded")
        assert installed(app) == ["2"]
        assert not (agent.root / "git-cache").exists()  # the registry's zip was used
    finally:
        isolated.stop()


def test_a_tampered_bundle_in_the_registry_store_is_refused_before_the_application_stops(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    first, second, stops, installing, gate = two_revisions(app, tmp_path)
    app.finished(app.deploy(app.push(first), "CodeDeployDefault.AllAtOnce"), "Succeeded")
    digest = app.push(second)
    deployment_id = app.deploy(digest, "CodeDeployDefault.OneAtATime")
    wait_until(installing.exists, 60, "the first host to fetch v2 and reach BeforeInstall")
    stored = running.workdir / "data/bundles/sha256" / digest.removeprefix("sha256:")
    stored.write_bytes(b"tampered")
    open_gate(gate, 1)
    refused_before_stop(app, deployment_id, stops, installing, f"is not {digest}")
