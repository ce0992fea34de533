"""How big a bundle may be, packed and unpacked: the bounds that stop zip and tgz bombs on the
registry (which lists every archive it registers) and on hosts (which unpack them).

Headers are checked first (declared sizes, entry count, ratio), then every byte actually written
is counted against the same bounds, so a lying header gains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30
MIB = 1 << 20


class BundleTooLarge(ValueError):
    """A bundle exceeds one of the limits; the message names the limit and its value."""


@dataclass(frozen=True)
class BundleLimits:
    max_bytes: int = 2 * GIB
    """Largest bundle (the archive file) accepted, in bytes."""
    max_unpacked_bytes: int = 8 * GIB
    """Largest total of the archive's files once unpacked, in bytes."""
    max_entries: int = 100_000
    """Most files and directories in one archive."""
    max_ratio: int = 100
    """Unpacked size at most this many times the archive's size (above `ratio_floor`)."""
    ratio_floor: int = 64 * MIB
    """Unpacked sizes up to this never count as a bomb, whatever the ratio (a tiny archive
    of a few repetitive files compresses far better than 100:1)."""

    def unpacked_budget(self, archive_bytes: int) -> int:
        """How many unpacked bytes an archive of `archive_bytes` may produce."""
        by_ratio = max(self.max_ratio * archive_bytes, self.ratio_floor)
        return min(self.max_unpacked_bytes, by_ratio)

    def check_size(self, archive_bytes: int) -> None:
        if archive_bytes > self.max_bytes:
            raise BundleTooLarge(
                f"bundle is {archive_bytes} bytes, over the limit of {self.max_bytes} "
                "(max_bundle_bytes)"
            )

    def check_entries(self, entries: int) -> None:
        if entries > self.max_entries:
            raise BundleTooLarge(
                f"bundle has more than {self.max_entries} entries (max_bundle_entries)"
            )

    def check_unpacked(self, unpacked_bytes: int, archive_bytes: int) -> None:
        budget = self.unpacked_budget(archive_bytes)
        if unpacked_bytes > budget:
            raise BundleTooLarge(
                f"bundle unpacks to more than {budget} bytes (max_unpacked_bytes "
                f"{self.max_unpacked_bytes}, at most {self.max_ratio} times its "
                f"{archive_bytes}-byte archive): refused as a possible archive bomb"
            )


def limits_from_mapping(raw: dict[str, object], where: str) -> BundleLimits:
    """BundleLimits from configuration keys max_bundle_bytes, max_unpacked_bytes,
    max_bundle_entries, max_compression_ratio (each a positive integer)."""
    keys = {
        "max_bundle_bytes": "max_bytes",
        "max_unpacked_bytes": "max_unpacked_bytes",
        "max_bundle_entries": "max_entries",
        "max_compression_ratio": "max_ratio",
    }
    values: dict[str, int] = {}
    for key, attribute in keys.items():
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ValueError(f"{where}: {key} must be a positive integer")
        if int(value) < 1:
            raise ValueError(f"{where}: {key} must be a positive integer")
        values[attribute] = int(value)
    return BundleLimits(**values)


LIMIT_KEYS = (
    "max_bundle_bytes",
    "max_unpacked_bytes",
    "max_bundle_entries",
    "max_compression_ratio",
)
