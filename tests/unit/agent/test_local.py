"""`deploy-agent local` and `validate` with archive bundles (directories are covered by the
conformance suite)."""

from __future__ import annotations

import argparse
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from agent.local import run_local, run_validate, with_bundle_events

APPSPEC = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/a\n"


def make_archive(tmp_path: Path, kind: str) -> Path:
    files = {"appspec.yml": APPSPEC, "app/x.txt": "x"}
    if kind == "zip":
        path = tmp_path / "bundle.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        return path
    path = tmp_path / ("bundle.tgz" if kind == "tgz" else "bundle.tar")
    with tarfile.open(path, "w:gz" if kind == "tgz" else "w") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    return path


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_local_deploys_archives_of_every_type(tmp_path: Path, kind: str) -> None:
    out = io.StringIO()
    args = argparse.Namespace(
        bundle_location=make_archive(tmp_path, kind),
        type=None,
        deployment_group="g",
        events=None,
        file_exists_behavior=None,
        appspec_filename="appspec.yml",
        root_dir=tmp_path / "root",
        install_prefix=str(tmp_path / "prefix"),
        env=[],
    )
    assert run_local(args, out) == 0, out.getvalue()
    assert (tmp_path / "prefix/opt/a/x.txt").read_text() == "x"
    assert out.getvalue().rstrip().endswith("Succeeded")


def test_validate_reports_the_problem_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b/appspec.yml").write_text(APPSPEC)
    out = io.StringIO()
    code = run_validate(
        argparse.Namespace(path=tmp_path / "b", type=None, appspec_filename="appspec.yml"), out
    )
    assert code == 1
    assert out.getvalue() == "invalid: appspec: files[0].source 'app' is not in the bundle\n"


@pytest.mark.parametrize(
    ("listed", "run"),
    [
        (["ApplicationStart"], ["DownloadBundle", "Install", "ApplicationStart"]),
        (
            ["ApplicationStop", "Warmup"],
            ["ApplicationStop", "DownloadBundle", "Install", "Warmup"],
        ),
        (["DownloadBundle", "Warmup"], ["DownloadBundle", "Install", "Warmup"]),
        (["Warmup", "DownloadBundle", "Install"], ["Warmup", "DownloadBundle", "Install"]),
    ],
)
def test_download_and_install_run_even_when_the_events_leave_them_out(
    listed: list[str], run: list[str]
) -> None:
    assert with_bundle_events(listed) == run
