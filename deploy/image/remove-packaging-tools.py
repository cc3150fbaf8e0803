"""Remove pip, setuptools and wheel from the base image's Python (run by the Dockerfile).

The runtime image installs nothing after it is built, so tools that can fetch and install
code are only attack surface there. Base images differ in where they keep them: the
official ``python`` images under ``/usr/local/lib/python3.X/site-packages`` (plus the
wheels ``ensurepip`` bundles), Debian's python3 under ``/usr/lib/python3/dist-packages``
and ``/usr/share/python-wheels``; this finds them wherever the interpreter looks.
"""

from __future__ import annotations

import re
import shutil
import site
import sys
import sysconfig
from pathlib import Path

TOOLS = re.compile(
    r"^(pip|setuptools|wheel|pkg_resources|_distutils_hack|distutils-precedence\.pth)"
    r"([-.].*(dist-info|egg-info|\.pth))?$"
)
BUNDLED = re.compile(r"^(pip|setuptools|wheel)-.*\.whl$")
SCRIPTS = re.compile(r"^(pip|pip3|pip3\.\d+|wheel|easy_install(-3\.\d+)?)$")


def package_dirs() -> set[Path]:
    dirs = {Path(p) for p in site.getsitepackages()}
    dirs |= {Path(sysconfig.get_path(k)) for k in ("purelib", "platlib")}
    dirs.add(Path("/usr/lib/python3/dist-packages"))
    return {d for d in dirs if d.is_dir()}


def wheel_dirs() -> set[Path]:
    stdlib = Path(sysconfig.get_path("stdlib"))
    return {
        d
        for d in (stdlib / "ensurepip" / "_bundled", Path("/usr/share/python-wheels"))
        if d.is_dir()
    }


def remove(path: Path) -> None:
    print(f"removing {path}")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def main() -> int:
    for directory in package_dirs():
        for entry in directory.iterdir():
            if TOOLS.match(entry.name):
                remove(entry)
    for directory in wheel_dirs():
        for entry in directory.iterdir():
            if BUNDLED.match(entry.name):
                remove(entry)
    for directory in {Path(sys.prefix) / "bin", Path("/usr/local/bin"), Path("/usr/bin")}:
        for entry in directory.iterdir() if directory.is_dir() else ():
            if SCRIPTS.match(entry.name):
                remove(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
