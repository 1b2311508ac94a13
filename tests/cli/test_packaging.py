"""Packaging metadata in the form current setuptools reads without deprecation warnings."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression_with_its_files_and_a_setuptools_that_reads_it() -> None:
    project = PYPROJECT["project"]

    # `license = { text = ... }` makes setuptools print a deprecation warning on install.
    assert isinstance(project["license"], str)
    assert project["license-files"]
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), pattern
    (setuptools,) = [
        Requirement(text)
        for text in PYPROJECT["build-system"]["requires"]
        if Requirement(text).name == "setuptools"
    ]
    # Both keys exist from setuptools 77 on: an older one would reject the metadata.
    assert not setuptools.specifier.contains("76.99") and setuptools.specifier.contains("77.0")


def test_container_build_copies_the_license_files() -> None:
    copies = [
        line for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ") and "pyproject.toml" in line
    ]  # fmt: skip

    (copy,) = copies
    for pattern in PYPROJECT["project"]["license-files"]:
        assert pattern in copy.split()
