"""The agent's configuration: a certificate authority file is read at start, or refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import load_agent_config
from agent.errors import ConfigError


def write(path: Path, **extra: str) -> Path:
    path.write_text(yaml.safe_dump({"server": "127.0.0.1:7400", "instance_name": "web-1", **extra}))
    return path


def test_the_ca_file_is_read_when_the_agent_starts(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    config = load_agent_config(write(tmp_path / "agent.yaml", ca_file=str(tmp_path / "ca.pem")))
    assert config.ca_certificate == b"-----BEGIN CERTIFICATE-----\n"
    assert load_agent_config(write(tmp_path / "plain.yaml")).ca_certificate == b""


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file: No such file"):
        load_agent_config(write(tmp_path / "agent.yaml", ca_file=str(tmp_path / "none.pem")))
