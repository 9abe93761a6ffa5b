"""nbval over solutions/: where Fashion-MNIST is not on this machine, the cells tagged `fashion` are skipped (with the
reason) instead of failing; `.ci/run` installs Debian's dataset-fashion-mnist, so CI runs them."""
from __future__ import annotations

import pytest

from starter.config import FASHION_ENV
from starter.dataset_files import available_offline


def pytest_collection_modifyitems(config, items) -> None:
    if available_offline("fashion"):
        return
    skip = pytest.mark.skip(reason=f"Fashion-MNIST is not on this machine: `sudo apt install dataset-fashion-mnist` "
                                   f"or set {FASHION_ENV} (a networked machine downloads it in the notebook itself)")
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and "fashion" in cell.get("metadata", {}).get("tags", []):
            item.add_marker(skip)
