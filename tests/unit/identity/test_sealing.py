"""Secrets at rest: sealed under a private key beside the cluster's authority (shared by its
processes), bound to their access key id."""

from __future__ import annotations

from pathlib import Path

from services.core.pki import SEALING_KEY, sealing_key
from services.identity.sealing import SecretBox


def test_a_sealed_secret_opens_only_for_its_key_id(tmp_path: Path) -> None:
    box = SecretBox(sealing_key(tmp_path / "pki", tmp_path / "data" / SEALING_KEY))
    sealed = box.seal("the secret", "ODAKONE")
    assert b"the secret" not in sealed
    assert box.open(sealed, "ODAKONE") == "the secret"
    assert box.open(sealed, "ODAKTWO") is None


def test_the_key_is_private_kept_and_moved_from_where_it_used_to_live(tmp_path: Path) -> None:
    legacy = tmp_path / "data" / SEALING_KEY
    legacy.parent.mkdir()
    legacy.write_bytes(b"k" * 32)
    sealed = SecretBox(b"k" * 32).seal("s", "K")
    key = sealing_key(tmp_path / "pki", legacy)
    assert not legacy.exists()
    assert (tmp_path / "pki" / SEALING_KEY).stat().st_mode & 0o777 == 0o600
    assert SecretBox(key).open(sealed, "K") == "s"
    assert sealing_key(tmp_path / "pki", legacy) == key  # another process of the cluster
    assert SecretBox(sealing_key(tmp_path / "other", legacy)).open(sealed, "K") is None
