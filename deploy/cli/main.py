"""deploy: the OpenDeploy CLI. Verbs and flags mirror `aws deploy`; output is JSON by default."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from deploy.cli import (
    applications,
    configs,
    deployments,
    groups,
    identity,
    instances,
    logs,
    revisions,
    target_groups,
)
from deploy.cli.watch import watch
from deploy.client import DeployClient
from deploy.errors import ApiError, ClientError

EXIT_USAGE = 252
EXIT_SERVICE = 254
EXIT_FAILED = 255

Command = Callable[[DeployClient, argparse.Namespace], dict[str, Any] | None]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit 252, like the AWS CLI."""

    def error(self, message: str) -> NoReturn:
        print(f"deploy: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _revision_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry-location", help="digest=sha256:…,bundleType=zip")
    parser.add_argument("--s3-location", help="bucket=…,key=…,bundleType=zip|tar|tgz")
    parser.add_argument("--github-location", help="repository=owner/repo,commitId=…")
    parser.add_argument("--revision", help="RevisionLocation as JSON")


SPECS: dict[str, tuple[Command, list[tuple[str, dict[str, Any]]]]] = {}


def _verb(name: str, func: Command, *flags: tuple[str, dict[str, Any]]) -> None:
    SPECS[name] = (func, list(flags))


REQ = {"required": True}
APP = ("--application-name", REQ)
GROUP = ("--deployment-group-name", REQ)
DEPLOYMENT = ("--deployment-id", REQ)
REVISION: tuple[str, dict[str, Any]] = ("@revision", {})

_verb(
    "create-application",
    applications.create_application,
    APP,
    ("--compute-platform", {"default": "Server", "choices": ["Server"]}),
)
_verb("get-application", applications.get_application, APP)
_verb("list-applications", applications.list_applications)
_verb(
    "push",
    revisions.push,
    APP,
    ("--source", REQ),
    ("--s3-location", {}),
    ("--description", {}),
    ("--ignore-hidden-files", {"action": "store_true"}),
)
_verb(
    "register-application-revision",
    revisions.register_application_revision,
    APP,
    REVISION,
    ("--description", {}),
)
_verb("get-application-revision", revisions.get_application_revision, APP, REVISION)
_verb(
    "list-application-revisions",
    revisions.list_application_revisions,
    APP,
    ("--sort-by", {"choices": list(revisions.SORT_BY)}),
    ("--sort-order", {"choices": list(revisions.SORT_ORDER)}),
    ("--s3-bucket", {}),
    ("--s3-key-prefix", {}),
    ("--deployed", {"choices": list(revisions.DEPLOYED)}),
)
_verb(
    "batch-get-application-revisions",
    revisions.batch_get_application_revisions,
    APP,
    ("--revisions", {"nargs": "+", "required": True}),
)
_verb("get-deployment-config", configs.get_deployment_config, ("--deployment-config-name", REQ))
_verb("list-deployment-configs", configs.list_deployment_configs)
_verb(
    "create-deployment-config",
    configs.create_deployment_config,
    ("--deployment-config-name", REQ),
    ("--minimum-healthy-hosts", REQ),
    ("--compute-platform", {"choices": ["Server"]}),
    ("--traffic-routing-config", {}),
)
_verb(
    "delete-deployment-config",
    configs.delete_deployment_config,
    ("--deployment-config-name", REQ),
)
_verb(
    "create-deployment-group",
    groups.create_deployment_group,
    APP,
    GROUP,
    ("--deployment-config-name", {}),
    ("--service-role-arn", {}),
    ("--on-premises-instance-tag-filters", {"nargs": "+"}),
    ("--on-premises-tag-set", {}),
    ("--auto-rollback-configuration", {}),
    ("--trigger-configurations", {"nargs": "+"}),
    ("--fetch-revisions-through-registry", {"action": "store_true"}),
    ("--deployment-style", {}),
    ("--load-balancer-info", {}),
    ("--blue-green-deployment-configuration", {}),
    ("--alarm-configuration", {}),
)
_verb(
    "update-deployment-group",
    groups.update_deployment_group,
    APP,
    ("--current-deployment-group-name", REQ),
    ("--new-deployment-group-name", {}),
    ("--deployment-config-name", {}),
    ("--on-premises-instance-tag-filters", {"nargs": "*"}),
    ("--on-premises-tag-set", {}),
    ("--auto-rollback-configuration", {}),
    ("--trigger-configurations", {"nargs": "*"}),
    ("--service-role-arn", {}),
    (
        "--fetch-revisions-through-registry",
        {"action": argparse.BooleanOptionalAction, "default": None},
    ),
    ("--deployment-style", {}),
    ("--load-balancer-info", {}),
    ("--blue-green-deployment-configuration", {}),
    ("--alarm-configuration", {}),
)
_verb("get-deployment-group", groups.get_deployment_group, APP, GROUP)
_verb("delete-deployment-group", groups.delete_deployment_group, APP, GROUP)
_verb("list-deployment-groups", groups.list_deployment_groups, APP)
_verb(
    "create-deployment",
    deployments.create_deployment,
    APP,
    GROUP,
    REVISION,
    ("--deployment-config-name", {}),
    ("--description", {}),
    ("--file-exists-behavior", {}),
    ("--ignore-application-stop-failures", {"action": "store_true"}),
    ("--update-outdated-instances-only", {"action": "store_true"}),
    ("--auto-rollback-configuration", {}),
    ("--target-instances", {}),
    ("--override-alarm-configuration", {}),
)
_verb("get-deployment", deployments.get_deployment, DEPLOYMENT)
_verb(
    "stop-deployment",
    deployments.stop_deployment,
    DEPLOYMENT,
    ("--auto-rollback-enabled", {"action": argparse.BooleanOptionalAction, "default": None}),
)
_verb(
    "list-deployments",
    deployments.list_deployments,
    ("--application-name", {}),
    ("--deployment-group-name", {}),
    ("--include-only-statuses", {"nargs": "+"}),
    ("--create-time-range", {}),
    ("--max-items", {"type": int}),
    ("--starting-token", {}),
)
_verb(
    "continue-deployment",
    deployments.continue_deployment,
    DEPLOYMENT,
    ("--deployment-wait-type", {"choices": ["READY_WAIT", "TERMINATION_WAIT"]}),
)
_verb("list-deployment-targets", deployments.list_deployment_targets, DEPLOYMENT)
_verb("get-deployment-target", deployments.get_deployment_target, DEPLOYMENT, ("--target-id", REQ))
_verb(
    "logs",
    logs.logs,
    DEPLOYMENT,
    ("--target-id", {"help": "one instance's output (default: every target's)"}),
    ("--follow", {"action": "store_true", "help": "print lines as they are written"}),
)
_verb(
    "register-on-premises-instance",
    instances.register_on_premises_instance,
    ("--instance-name", REQ),
    ("--tags", {"nargs": "+"}),
    ("--iam-user-arn", {}),
    ("--iam-session-arn", {}),
)
_verb(
    "create-join-token",
    instances.create_join_token,
    ("--tags", {"nargs": "+"}),
    ("--max-uses", {"type": int, "default": 1}),
    ("--expires-in", {"type": int, "default": 3600, "help": "seconds (at most 7 days)"}),
)
_verb("get-on-premises-instance", instances.get_on_premises_instance, ("--instance-name", REQ))
_verb(
    "deregister-on-premises-instance",
    instances.deregister_on_premises_instance,
    ("--instance-name", REQ),
)
_verb(
    "add-tags-to-on-premises-instances",
    instances.add_tags_to_on_premises_instances,
    ("--instance-names", {"nargs": "+", "required": True}),
    ("--tags", {"nargs": "+", "required": True}),
)
_verb(
    "remove-tags-from-on-premises-instances",
    instances.remove_tags_from_on_premises_instances,
    ("--instance-names", {"nargs": "+", "required": True}),
    ("--tags", {"nargs": "+", "required": True}),
)
_verb(
    "list-on-premises-instances",
    instances.list_on_premises_instances,
    ("--tag-filters", {"nargs": "+"}),
    ("--registration-status", {}),
)

TARGET_GROUP = ("--name", REQ)
_verb(
    "create-target-group",
    target_groups.create_target_group,
    TARGET_GROUP,
    ("--load-balancer", {}),
    ("--provider", {"choices": list(target_groups.PROVIDERS)}),
    ("--port", {"type": int, "required": True}),
    ("--deregistration-delay-seconds", {"type": int}),
    ("--haproxy-backend", {}),
)
_verb("get-target-group", target_groups.get_target_group, TARGET_GROUP)
_verb("list-target-groups", target_groups.list_target_groups)
_verb("delete-target-group", target_groups.delete_target_group, TARGET_GROUP)
_verb(
    "set-target-address",
    target_groups.set_target_address,
    ("--target-group-name", REQ),
    ("--instance-name", REQ),
    ("--address", REQ),
)

USER = ("--user-name", REQ)
POLICY_ARN = ("--policy-arn", REQ)
_verb("create-user", identity.create_user, USER)
_verb("delete-user", identity.delete_user, USER)
_verb("list-users", identity.list_users)
_verb("create-access-key", identity.create_access_key, USER)
_verb("delete-access-key", identity.delete_access_key, USER, ("--access-key-id", REQ))
_verb("list-access-keys", identity.list_access_keys, USER)
_verb(
    "create-policy",
    identity.create_policy,
    ("--policy-name", REQ),
    ("--policy-document", REQ),
)
_verb("list-policies", identity.list_policies)
_verb("attach-user-policy", identity.attach_user_policy, USER, POLICY_ARN)
_verb("detach-user-policy", identity.detach_user_policy, USER, POLICY_ARN)
_verb("list-attached-user-policies", identity.list_attached_user_policies, USER)
_verb(
    "list-audit-events",
    identity.list_audit_events,
    ("--user-name", {}),
    ("--action", {}),
    ("--start-time", {}),
    ("--end-time", {}),
    ("--max-items", {"type": int}),
    ("--starting-token", {}),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="deploy", description=__doc__)
    parser.add_argument(
        "--endpoint",
        help="host:port over TLS, http://host:port in plaintext "
        "(default $DEPLOY_ENDPOINT or 127.0.0.1:7400)",
    )
    parser.add_argument(
        "--ca-file",
        help="the certificate authority TLS trusts (default $DEPLOY_CA_FILE, else the system's)",
    )
    parser.add_argument(
        "--profile", help="credentials profile (default $DEPLOY_PROFILE; see deploy.credentials)"
    )
    parser.add_argument("--output", choices=["json", "table"], default="json")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    for name, (func, flags) in SPECS.items():
        sub = verbs.add_parser(name, help=(func.__doc__ or "").split("\n")[0] or None)
        for flag, options in flags:
            if flag == "@revision":
                _revision_flags(sub)
            elif flag not in {a for action in sub._actions for a in action.option_strings}:
                sub.add_argument(flag, **options)
        sub.set_defaults(func=func)
    wait = verbs.add_parser("wait", help="wait for a deployment to succeed")
    wait.add_argument("waiter", choices=["deployment-successful"])
    wait.add_argument("--deployment-id", required=True)
    wait.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds (default 1800, as the AWS waiter)"
    )
    wait.set_defaults(func=deployments.wait_deployment_successful)
    live = verbs.add_parser("watch", help="live progress of a deployment")
    live.add_argument("deployment_id")
    live.add_argument("--logs", action="store_true", help="also show what the running hooks write")
    live.set_defaults(func=None)
    return parser


def _print(result: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(result, indent=4))
        return
    for key, value in _flatten(result):
        print(f"{key:<50} {value}")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [
            kv for k, v in value.items() for kv in _flatten(v, f"{prefix}.{k}" if prefix else k)
        ]
    if isinstance(value, list):
        return [kv for i, v in enumerate(value) for kv in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, value)]


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        with DeployClient(args.endpoint, args.ca_file, profile=args.profile) as client:
            if args.verb == "watch":
                status = watch(client, args.deployment_id, logs=args.logs)
                raise SystemExit(0 if status == "Succeeded" else EXIT_FAILED)
            result = args.func(client, args)
    except ApiError as error:
        print(str(error).splitlines()[0], file=sys.stderr)
        raise SystemExit(EXIT_SERVICE) from None
    except ClientError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if result is not None:
        _print(result, args.output)


if __name__ == "__main__":
    main()
