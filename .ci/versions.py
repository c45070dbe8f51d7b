"""Print `name==version` for each direct dependency of pyproject.toml (core and every extra), one a line."""

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
requirements = [*project["dependencies"], *(r for reqs in project["optional-dependencies"].values() for r in reqs)]
names = dict.fromkeys(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0] for r in requirements)
for name in names:
    if name == project["name"]:  # the extras' self-references (fastir[test])
        continue
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(f"{name}: not installed")
