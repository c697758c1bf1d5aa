"""Does requirements.lock agree with pyproject.toml, and does a venv agree with the lock?

    python tools/lock_check.py                 # pyproject vs lock: exit 1 and one line per problem
    python tools/lock_check.py --extras LOCK   # print installed packages the lock does not name
    python tools/lock_check.py --venv LOCK     # exit 1 (one line per package) unless this env equals LOCK

Used by tools/bootstrap.sh (to remove what an older lock installed) and tests/test_lock.py.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "npcface"


def normalise(name: str) -> str:
    """PEP 503 name: case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """normalised name -> exact version; every line must be NAME==VERSION."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        if not match:
            raise ValueError(f"{path.name}:{number}: not NAME==VERSION: {raw!r}")
        pins[normalise(match[1])] = match[2]
    return pins


def project_requirements(pyproject: Path) -> list[str]:
    """The dependencies and every extra (test, ray), as written in pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return list(project["dependencies"]) + [r for group in extras.values() for r in group]


def disagreements(pyproject: Path, lock: Path) -> list[str]:
    """One line per requirement the lock lacks or pins outside its range."""
    from packaging.requirements import Requirement

    pins = read_lock(lock)
    problems = []
    for text in project_requirements(pyproject):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": "test"}):
            continue
        name = normalise(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name}: required by pyproject.toml ({text}) but missing from {lock.name}")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}: {lock.name} pins {pins[name]}, outside pyproject.toml's "
                            f"range {requirement.specifier}")
    return problems


def installed_versions() -> dict[str, str]:
    """normalised name -> version of every distribution installed in this environment's
    site-packages. Only there: once imported, ray puts its bundled copies (psutil, colorama) on
    sys.path, and those are ray's files, not packages pip installed."""
    import sysconfig

    where = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions(path=where)
            if d.metadata["Name"]}


def installed_extras(lock: Path, installed: dict[str, str] | None = None) -> list[str]:
    """Distributions in this environment that the lock does not name (the project excepted)."""
    pins = read_lock(lock)
    return sorted(n for n in (installed or installed_versions()) if n not in pins and n != PROJECT)


def venv_differences(lock: Path) -> list[str]:
    """One line per locked package missing or at another version here, and per package the lock
    does not name: what a venv built from an older lock, or changed by hand, still needs."""
    installed = installed_versions()
    problems = [f"{name}: {installed.get(name, 'not installed')} here, {version} in {lock.name}"
                for name, version in read_lock(lock).items() if installed.get(name) != version]
    return problems + [f"{name}: installed here, not in {lock.name}" for name in installed_extras(lock, installed)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--extras"] and len(argv) == 2:
        print("\n".join(installed_extras(Path(argv[1]))))
        return 0
    if argv[:1] == ["--venv"] and len(argv) == 2:
        problems = venv_differences(Path(argv[1]))
        print("\n".join(problems))
        return 1 if problems else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    problems = disagreements(ROOT / "pyproject.toml", ROOT / "requirements.lock")
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
