"""Names and free text from requests: a trailing newline or a control character never passes."""

from __future__ import annotations

import pytest

from services.core.errors import InvalidArgument
from services.core.names import check_name, check_text


@pytest.mark.parametrize("value", ["app\n", "app;x", "a" * 101, "", "ü"])
def test_bad_names_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument, match="applicationName"):
        check_name("applicationName", value)


@pytest.mark.parametrize("value", ["nul\x00", "bell\x07", "x" * 257])
def test_bad_text_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument, match="description"):
        check_text("description", value)


def test_text_may_hold_tabs_newlines_and_any_letter() -> None:
    assert check_text("description", "Release 2\n\tüber ✓") == "Release 2\n\tüber ✓"
