"""docs/screenshots.py: the console's screenshots reach the site from where tests/test_console.py writes them."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config import load_config
from mkdocs.structure.files import Files

from docs import screenshots

REPO = Path(__file__).resolve().parents[2]


def test_every_console_screenshot_is_a_site_file_read_in_place() -> None:
    config = load_config(str(REPO / "mkdocs.yml"))
    files = screenshots.on_files(Files([]), config=config)
    shots = sorted((REPO / "gateway" / "console" / "screenshots").glob("*.png"))
    assert shots, "the console's screenshots are committed"
    assert {file.src_uri: file.abs_src_path for file in files} == {f"screenshots/{shot.name}": str(shot) for shot in shots}
    assert all(file.dest_uri == file.src_uri for file in files)
