"""Property tests: any appspec document and any archive entry names are accepted or rejected
with a clear error — never a crash — and a rejected archive writes nothing."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.appspec import SCRIPTABLE_EVENTS, parse_appspec, read_appspec
from agent.download import unpack
from agent.errors import EventFailed

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
        *SCRIPTABLE_EVENTS,
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
