"""`steadyeye demo --report DIR`: what the run saw, as a page that opens anywhere.

DIR gets demo.mp4 (every processed frame with its tracks, the camera's rules and the alerts as
they fired), latency.png, classes.png and index.html, which links them by relative paths, so
the folder can be zipped or moved. The video is written while the run goes, from the pixels
ingest parked in the claim-check store, so it works for any source, files or streams.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

VIDEO, LATENCY, CLASSES, INDEX = "demo.mp4", "latency.png", "classes.png", "index.html"
_NEEDS = ("jinja2", "matplotlib", "imageio_ffmpeg", "supervision")


class ReportError(Exception):
    """The report cannot be written (a missing extra, a directory that takes no files)."""


def check_directory(directory: Path) -> None:
    """Create `directory` if needed and prove a file can be written there; before the stack
    starts, so that a typo or a read-only path costs no run."""
    if missing := [name for name in _NEEDS if importlib.util.find_spec(name) is None]:
        raise ReportError(
            f"needs {', '.join(missing)}: install the view extra (pip install 'steadyeye[view]')"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ReportError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
