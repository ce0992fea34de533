"""Secrets at rest: sealed under a private key file, bound to their access key id."""

from __future__ import annotations

from pathlib import Path

from services.identity.sealing import SecretBox


def test_a_sealed_secret_opens_only_for_its_key_id(tmp_path: Path) -> None:
    box = SecretBox.from_file(tmp_path / "identity.key")
    sealed = box.seal("the secret", "ODAKONE")
    assert b"the secret" not in sealed
    assert box.open(sealed, "ODAKONE") == "the secret"
    assert box.open(sealed, "ODAKTWO") is None


def test_the_key_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "identity.key"
    sealed = SecretBox.from_file(path).seal("s", "K")
    assert path.stat().st_mode & 0o777 == 0o600
    assert SecretBox.from_file(path).open(sealed, "K") == "s"
    assert SecretBox.from_file(tmp_path / "other.key").open(sealed, "K") is None
