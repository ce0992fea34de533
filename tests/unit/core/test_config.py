"""Server configuration: file, environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.config import load_config, parse_services
from services.core.errors import InvalidArgument
from services.core.interceptor import is_loopback_peer


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("listen: 127.0.0.1:9000\nservices: fleet,registry\n")
    config = load_config(
        path,
        {
            "OPENDEPLOY_LISTEN": "127.0.0.1:9100",
            "OPENDEPLOY_PEER_ORCHESTRATOR": "10.0.0.1:7403",
            "OPENDEPLOY_PEER_IDENTITY": "10.0.0.1:7405",
        },
    )
    assert config.listen == "127.0.0.1:9100"
    assert config.services == ("fleet", "registry")
    assert config.peer_address("orchestrator") == "10.0.0.1:7403"
    assert config.peer_address("fleet") == "127.0.0.1:9100"


def test_sqlite_file_per_service_by_default(tmp_path: Path) -> None:
    config = load_config(None, {"OPENDEPLOY_DATA_DIR": str(tmp_path)})
    assert config.database_url_for("fleet") == f"sqlite:///{tmp_path.resolve()}/fleet.db"


@pytest.mark.parametrize("text", ["bogus: 1\n", "- a\n", "peers: {nope: x}\n"])
def test_bad_config_is_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match="config"):
        load_config(path, {})


def test_unknown_service_is_named() -> None:
    with pytest.raises(InvalidArgument, match="unknown service nope"):
        parse_services("fleet,nope")


def test_provisioners_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("provisioners:\n  local:\n    command: ./start-hosts.sh\n")
    assert load_config(path, environ={}).provisioners == {"local": {"command": "./start-hosts.sh"}}
    env = {"OPENDEPLOY_PROVISIONERS": '{"cloud": {"url": "https://hooks.example/hosts"}}'}
    assert load_config(None, environ=env).provisioners == {
        "cloud": {"url": "https://hooks.example/hosts"}
    }


@pytest.mark.parametrize(
    "value",
    ['{"x": {"command": "a", "url": "b"}}', '{"x": {"script": "a"}}', '["x"]', "{not json"],
)
def test_a_provisioner_needs_exactly_a_command_or_a_url(value: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        load_config(None, environ={"OPENDEPLOY_PROVISIONERS": value})
    assert "provisioners" in str(error.value) or "OPENDEPLOY_PROVISIONERS" in str(error.value)


def test_hardening_keys_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(
        "git_allowed_schemes: [https, ssh]\n"
        "max_bundle_bytes: 1000\n"
        "load_balancers:\n  edge: {haproxy: {admin_socket: /run/haproxy.sock}}\n"
    )
    config = load_config(path, environ={"OPENDEPLOY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"})
    assert config.git_allowed_schemes == ("https", "ssh")
    assert config.bundle_limits.max_bytes == 1000
    assert config.load_balancers == {"edge": {"haproxy": {"admin_socket": "/run/haproxy.sock"}}}
    assert config.outbound.refusal("127.0.0.1") is None
    assert config.outbound.refusal("10.0.0.1") is not None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OPENDEPLOY_GIT_ALLOWED_SCHEMES": "https,file"}, "git_allowed_schemes"),
        ({"OPENDEPLOY_GIT_ALLOWED_SCHEMES": "ext"}, "git_allowed_schemes"),
        ({"OPENDEPLOY_MAX_BUNDLE_BYTES": "-1"}, "max_bundle_bytes"),
        ({"OPENDEPLOY_OUTBOUND_ALLOWED_NETWORKS": "everywhere"}, "outbound_allowed_networks"),
        ({"OPENDEPLOY_LOAD_BALANCERS": '{"x": {"haproxy": {}}}'}, "admin_socket"),
        ({"OPENDEPLOY_LOAD_BALANCERS": '{"x": {"nginx": {}}}'}, "load_balancers.x"),
        ({"OPENDEPLOY_GIT_BASE_URL": "file:///srv/git/"}, "scheme 'file'"),
    ],
)
def test_bad_hardening_settings_are_refused_naming_the_key(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidArgument) as error:
        load_config(None, environ=environ)
    assert named in str(error.value)


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv6:[::1]:5000", True),
        ("unix:/run/x.sock", True),
        ("ipv4:10.0.0.7:5000", False),
        ("ipv6:[2001:db8::1]:5000", False),
    ],
)
def test_reflection_is_for_loopback_peers(peer: str, loopback: bool) -> None:
    assert is_loopback_peer(peer) is loopback


def test_tls_and_authentication_are_on_unless_turned_off() -> None:
    default = load_config(None, environ={})
    assert default.tls is True and default.auth is True
    assert default.authority_dir == Path(".opendeploy") / "pki"
    environ = {"OPENDEPLOY_TLS": "off", "OPENDEPLOY_AUTH": "0", "OPENDEPLOY_PKI_DIR": "/srv/pki"}
    config = load_config(None, environ=environ)
    assert config.tls is False and config.auth is False
    assert config.authority_dir == Path("/srv/pki")
    with pytest.raises(InvalidArgument, match="OPENDEPLOY_TLS must be one of 1, true"):
        load_config(None, environ={"OPENDEPLOY_TLS": "maybe"})


def test_a_process_without_the_identity_service_must_name_it_when_auth_is_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("services: fleet\n")
    with pytest.raises(InvalidArgument, match="identity service"):
        load_config(path, environ={})
    assert load_config(path, environ={"OPENDEPLOY_AUTH": "0"}).auth is False
