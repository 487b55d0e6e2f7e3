"""The web console's screenshots in the site (an mkdocs hook), from where the console's test writes them.

tests/test_console.py replaces gateway/console/screenshots/*.png, which the README shows too; the
site takes those files as they are, as `screenshots/<name>.png`, rather than a second copy in docs/.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

SCREENSHOTS = Path(__file__).resolve().parent.parent / "gateway" / "console" / "screenshots"


def on_files(files: Files, /, *, config: MkDocsConfig) -> Files:
    # src_uri screenshots/<name>.png under src_dir gateway/console: read where it is, published under that name.
    for path in sorted(SCREENSHOTS.glob("*.png")):
        files.append(File(f"screenshots/{path.name}", str(SCREENSHOTS.parent), config.site_dir, config.use_directory_urls))
    return files
