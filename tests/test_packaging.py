"""pyproject.toml and environment.yml list the same packages; the package's own requirements stay loose."""
from __future__ import annotations

import re
import tomllib

from starter.config import PROJECT_ROOT

CONDA_TO_PIP = {"pytorch": "torch"}


def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def conda_packages() -> set[str]:
    names = set()
    text = (PROJECT_ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        match = re.match(r"^  - ([A-Za-z][\w.-]*)", line)
        if match and match[1] not in {"python", "pip"}:
            names.add(CONDA_TO_PIP.get(match[1], match[1]))
    return names


def test_environment_yml_agrees_with_pyproject():
    project = pyproject()["project"]
    pip_names = {re.split(r"[<>=!~ \[]", dep)[0] for dep in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert conda_packages() == pip_names


def test_package_requirements_leave_colab_alone():
    for dep in pyproject()["project"]["dependencies"]:
        assert not re.search(r"[<>=~]", dep), f"{dep}: no version pins in the package itself (Colab ships its own)"
