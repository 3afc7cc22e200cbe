"""Maps the fixed top-level folders onto the reelforge.* namespace (see pyproject.toml).

Subpackages are discovered here so that a new folder under data/, train/ or eval/ needs no
packaging edit. conf/ ships as package data so Hydra finds it in editable and plain installs.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {"platform": "reelforge.platform", "data": "reelforge.data", "train": "reelforge.train",
         "eval": "reelforge.eval", "conf": "reelforge.conf"}
SKIP = {"__pycache__"}


def _packages() -> list[str]:
    here = Path(__file__).parent
    found = []
    for folder, name in ROOTS.items():
        root = here / folder
        found.append(name)
        for sub in sorted(p for p in root.rglob("*") if p.is_dir() and not SKIP & set(p.parts)):
            found.append(name + "." + ".".join(sub.relative_to(root).parts))
    return found


setup(
    packages=_packages(),
    package_dir={name: folder for folder, name in ROOTS.items()},
    package_data={"reelforge.conf": ["*.yaml", "**/*.yaml"], "reelforge.eval": ["templates/*"]},
)
