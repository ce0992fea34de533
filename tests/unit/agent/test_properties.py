"""Property tests: any appspec document and any archive entry names are accepted or rejected
with a clear error — never a crash — and a rejected archive writes nothing."""

from __future__ import annotations

import io
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.appspec import parse_appspec, read_appspec
from agent.errors import ErrorCode, EventFailed
from agent.unpack import unpack
from deploy.lifecycle import SCRIPTED_EVENTS

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "version",
        "os",
        "files",
        "hooks",
        "permissions",
        "file_exists_behavior",
        "source",
        "destination",
        "location",
        "timeout",
        "runas",
        "object",
        "mode",
        "type",
        "pattern",
        "except",
        "owner",
        *SCRIPTED_EVENTS,
    ]
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=20,
)


@given(documents)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_any_document_is_accepted_or_rejected_clearly(raw: Any) -> None:
    try:
        parse_appspec(raw)
    except EventFailed as error:
        assert error.message.startswith("appspec: ")


@given(values)
@settings(max_examples=200)
def test_any_document_under_version_and_os_is_handled(body: Any) -> None:
    try:
        parse_appspec({"version": 0.0, "os": "linux", "hooks": body, "files": body})
    except EventFailed as error:
        assert error.message


@given(st.text(max_size=200))
def test_any_text_is_accepted_or_rejected_clearly(text: str) -> None:
    try:
        read_appspec(text)
    except EventFailed as error:
        assert error.message.startswith("appspec: ")


entry_names = st.text(alphabet=st.sampled_from(list("ab./_-\\")), min_size=1, max_size=12)


@given(st.lists(entry_names, min_size=1, max_size=5, unique=True))
@settings(max_examples=150, deadline=None)
def test_any_zip_entry_names_unpack_inside_or_are_rejected(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle, archive = root / "b.zip", root / "box" / "archive"
        with zipfile.ZipFile(bundle, "w") as zf:
            for name in names:
                zf.writestr(name, "x")
        try:
            unpack(bundle, "zip", archive)
        except EventFailed as error:
            assert error.message
            assert not archive.exists() or not any(archive.iterdir())
            return
        resolved = archive.resolve()
        for path in archive.rglob("*"):
            assert resolved in path.resolve().parents
        outside = [
            p
            for p in root.rglob("*")
            if p != bundle
            and resolved not in p.resolve().parents
            and p.resolve() != resolved
            and p.resolve() not in resolved.parents
        ]
        assert outside == []


tar_kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
)
tar_members = st.tuples(
    entry_names,
    tar_kinds,
    st.integers(min_value=0, max_value=0o7777),
    st.sampled_from(["", "a", "../../etc/passwd", "/etc/passwd", "b/../a", ".."]),
    st.integers(min_value=0, max_value=4096),
)


@given(st.lists(tar_members, min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_any_tar_entries_unpack_inside_capped_or_are_rejected(
    members: list[tuple[str, bytes, int, str, int]],
) -> None:
    """Hostile names, links, modes and sizes: refused with a clear error, or unpacked with
    nothing outside the archive, no link leading out of it, nothing above 0o755."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle, archive = root / "b.tar", root / "box" / "archive"
        with tarfile.open(bundle, "w") as tf:
            for name, kind, mode, link, size in members:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.linkname = kind, mode, link
                info.size = size if kind == tarfile.REGTYPE else 0
                tf.addfile(info, io.BytesIO(bytes(info.size)) if info.size else None)
        _unpacked_inside_or_refused(root, bundle, archive, "tar")


@given(
    st.lists(
        st.tuples(entry_names, st.integers(0, 0o177777)),
        min_size=1,
        max_size=5,
        unique_by=lambda entry: entry[0],
    )
)
@settings(max_examples=150, deadline=None)
def test_any_zip_entry_modes_and_types_unpack_capped_or_are_rejected(
    entries: list[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle, archive = root / "b.zip", root / "box" / "archive"
        with zipfile.ZipFile(bundle, "w") as zf:
            for name, mode in entries:
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                zf.writestr(info, "x")
        _unpacked_inside_or_refused(root, bundle, archive, "zip")


def _unpacked_inside_or_refused(root: Path, bundle: Path, archive: Path, kind: str) -> None:
    try:
        unpack(bundle, kind, archive)
    except EventFailed as error:
        assert error.code is ErrorCode.INVALID_BUNDLE
        assert error.message
        assert not archive.exists()
        assert sorted(p.name for p in root.rglob("*")) == sorted([bundle.name, "box"])
        return
    inside = archive.resolve()
    for path in archive.rglob("*"):
        real = path.resolve()
        assert real == inside or inside in real.parents, path  # links too lead inside
        if path.is_symlink():
            continue
        assert path.is_file() or path.is_dir(), path
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & ~0o755 == 0, oct(path.stat().st_mode)
    assert {p.name for p in root.iterdir()} == {bundle.name, "box"}
    assert [p.name for p in (root / "box").iterdir()] == [archive.name]
