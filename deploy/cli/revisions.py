"""The revision verbs: `push` (bundle, upload, register) and the registry's revisions, and the
revision flags (--registry-location, --s3-location, --github-location, --revision) every verb
that names a revision takes."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from deploy.bundle import make_zip, upload_to_s3
from deploy.bundletypes import BUNDLE_TYPES
from deploy.cli import render
from deploy.cli.shorthand import parse_list, parse_structure, require
from deploy.cli.values import Result
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import common_pb2, registry_pb2


def _bundle_type(flag: str, value: str) -> common_pb2.BundleType.ValueType:
    try:
        return BUNDLE_TYPES[value]
    except KeyError:
        raise ClientError(f"{flag}: bundleType must be zip, tar or tgz, got {value!r}") from None


def revision_from_args(args: argparse.Namespace) -> common_pb2.RevisionLocation:
    """One of --registry-location, --s3-location, --github-location, --revision."""
    given = [
        f
        for f in ("registry_location", "s3_location", "github_location", "revision")
        if getattr(args, f, None)
    ]
    if len(given) != 1:
        raise ClientError(
            "give exactly one of --registry-location, --s3-location, "
            "--github-location or --revision"
        )
    if args.revision:
        return _revision_json(parse_structure("--revision", args.revision))
    if args.registry_location:
        loc = parse_structure("--registry-location", args.registry_location)
        (digest,) = require("--registry-location", loc, "digest")
        return common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_REGISTRY,
            registry_location=common_pb2.RegistryLocation(
                digest=digest,
                bundle_type=_bundle_type("--registry-location", loc.get("bundleType", "zip")),
            ),
        )
    if args.s3_location:
        loc = parse_structure("--s3-location", args.s3_location)
        bucket, key, kind = require("--s3-location", loc, "bucket", "key", "bundleType")
        return common_pb2.RevisionLocation(
            revision_type=common_pb2.REVISION_TYPE_S3,
            s3_location=common_pb2.S3Location(
                bucket=bucket,
                key=key,
                bundle_type=_bundle_type("--s3-location", kind),
                version=str(loc.get("version", "")),
                etag=str(loc.get("eTag", "")),
            ),
        )
    loc = parse_structure("--github-location", args.github_location)
    repository, commit = require("--github-location", loc, "repository", "commitId")
    return common_pb2.RevisionLocation(
        revision_type=common_pb2.REVISION_TYPE_GITHUB,
        github_location=common_pb2.GitHubLocation(repository=repository, commit_id=commit),
    )


def _revision_json(raw: dict[str, Any]) -> common_pb2.RevisionLocation:
    kind = raw.get("revisionType")
    flags = {
        "Registry": ("registryLocation", "--registry-location"),
        "S3": ("s3Location", "--s3-location"),
        "GitHub": ("gitHubLocation", "--github-location"),
    }
    if kind not in flags:
        raise ClientError("--revision: revisionType must be Registry, S3 or GitHub")
    field, flag = flags[kind]
    inner = raw.get(field)
    if not isinstance(inner, dict):
        raise ClientError(f"--revision: {field} is required for revisionType {kind}")
    text = ",".join(f"{k}={v}" for k, v in inner.items())
    namespace = argparse.Namespace(
        registry_location=None, s3_location=None, github_location=None, revision=None
    )
    setattr(namespace, flag.removeprefix("--").replace("-", "_"), text)
    return revision_from_args(namespace)


def push(client: DeployClient, args: argparse.Namespace) -> Result:
    """Bundle a directory, upload it to the registry (or to S3 with --s3-location
    s3://bucket/key), register it, and print how to deploy it."""
    client.call(
        client.registry.GetApplication,
        registry_pb2.GetApplicationRequest(application_name=args.application_name),
    )
    with tempfile.TemporaryDirectory(prefix="deploy-push-") as tmp:
        bundle = Path(tmp) / "bundle.zip"
        digest = make_zip(Path(args.source), bundle, getattr(args, "ignore_hidden_files", False))
        if args.s3_location:
            bucket, key = _s3_url(args.s3_location)
            upload_to_s3(bundle, bucket, key)
            location = common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_S3,
                s3_location=common_pb2.S3Location(
                    bucket=bucket, key=key, bundle_type=common_pb2.BUNDLE_TYPE_ZIP
                ),
            )
            where = f"--s3-location bucket={bucket},key={key},bundleType=zip"
        else:
            uploaded = client.upload_bundle(bundle, digest)
            location = common_pb2.RevisionLocation(
                revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                registry_location=uploaded.location,
            )
            where = f"--registry-location digest={digest},bundleType=zip"
    registered = client.call(
        client.registry.RegisterApplicationRevision,
        registry_pb2.RegisterApplicationRevisionRequest(
            application_name=args.application_name,
            revision=location,
            description=args.description or "",
        ),
    )
    return {
        "applicationName": args.application_name,
        "revision": render.revision(registered.revision),
        "deployCommand": (
            f"deploy create-deployment --application-name {args.application_name} {where} "
            "--deployment-group-name <deployment-group-name>"
        ),
    }


def _s3_url(value: str) -> tuple[str, str]:
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if not value.startswith("s3://") or not bucket or not key:
        raise ClientError(f"--s3-location {value!r}: expected s3://bucket/key")
    return bucket, key


def register_application_revision(client: DeployClient, args: argparse.Namespace) -> Result:
    client.call(
        client.registry.RegisterApplicationRevision,
        registry_pb2.RegisterApplicationRevisionRequest(
            application_name=args.application_name,
            revision=revision_from_args(args),
            description=args.description or "",
        ),
    )
    return None


def get_application_revision(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(
        client.registry.GetApplicationRevision,
        registry_pb2.GetApplicationRevisionRequest(
            application_name=args.application_name, revision=revision_from_args(args)
        ),
    )
    return {
        "applicationName": response.application_name,
        "revision": render.revision(response.revision),
        "revisionInfo": render.revision_info(response.revision_info),
    }


SORT_BY = {
    "registerTime": registry_pb2.REVISION_SORT_BY_REGISTER_TIME,
    "firstUsedTime": registry_pb2.REVISION_SORT_BY_FIRST_USED_TIME,
    "lastUsedTime": registry_pb2.REVISION_SORT_BY_LAST_USED_TIME,
}


SORT_ORDER = {
    "ascending": registry_pb2.SORT_ORDER_ASCENDING,
    "descending": registry_pb2.SORT_ORDER_DESCENDING,
}


DEPLOYED = {
    "include": registry_pb2.DEPLOYED_FILTER_INCLUDE,
    "exclude": registry_pb2.DEPLOYED_FILTER_EXCLUDE,
    "ignore": registry_pb2.DEPLOYED_FILTER_IGNORE,
}


def list_application_revisions(client: DeployClient, args: argparse.Namespace) -> Result:
    revisions = client.revisions(
        registry_pb2.ListApplicationRevisionsRequest(
            application_name=args.application_name,
            sort_by=SORT_BY.get(args.sort_by, registry_pb2.REVISION_SORT_BY_UNSPECIFIED),
            sort_order=SORT_ORDER.get(args.sort_order, registry_pb2.SORT_ORDER_UNSPECIFIED),
            s3_bucket=args.s3_bucket or "",
            s3_key_prefix=args.s3_key_prefix or "",
            deployed=DEPLOYED.get(args.deployed, registry_pb2.DEPLOYED_FILTER_UNSPECIFIED),
        )
    )
    return {"revisions": [render.revision(r) for r in revisions]}


def batch_get_application_revisions(client: DeployClient, args: argparse.Namespace) -> Result:
    """--revisions: a JSON list of RevisionLocation objects (as --revision takes one)."""
    flag = "--revisions"
    raw = parse_list(flag, args.revisions)
    response = client.call(
        client.registry.BatchGetApplicationRevisions,
        registry_pb2.BatchGetApplicationRevisionsRequest(
            application_name=args.application_name,
            revisions=[_revision_json(item) for item in raw],
        ),
    )
    return {
        "applicationName": response.application_name,
        "errorMessage": "",
        "revisions": [
            {
                "revisionLocation": render.revision(r.revision_location),
                "genericRevisionInfo": render.revision_info(r.generic_revision_info),
            }
            for r in response.revisions
        ],
    }
