"""The course as pip installs it (a hub, a platform's container), without downloads: its wheel in a fresh virtual
environment that reaches this run's other packages (torch, Jupyter...) through a .pth file, never the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OURS = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").is_dir())


def fresh_venv(folder: Path, packages: Path = OURS) -> Path:
    """A virtual environment in `folder` whose Python also imports from `packages`; returns its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next((folder / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(f"{packages}\n")
    return site


def install_wheel(wheel: Path, folder: Path) -> Path:
    """`fresh_venv` in `folder` with the course's `wheel` installed (not editable); returns its site-packages."""
    site = fresh_venv(folder)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    return site
