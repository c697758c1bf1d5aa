"""requirements.lock: it agrees with pyproject.toml, this venv equals it, and the README commands'
set-up (tools/bootstrap.sh) follows it when it changes or when the venv is changed by hand."""
from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import lock_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def test_the_lock_satisfies_every_range_in_pyproject():
    assert lock_check.disagreements(ROOT / "pyproject.toml", LOCK) == []
    pins = lock_check.read_lock(LOCK)
    assert pins["torch"] == pins["torchaudio"], "torch and torchaudio must be one matched release"
    assert "npcface" not in pins


def test_a_disagreeing_pyproject_is_reported(tmp_path):
    text = (ROOT / "pyproject.toml").read_text()
    assert '"scipy>=1.10"' in text and '"msgpack>=1.0"' in text
    changed = text.replace('"scipy>=1.10"', '"scipy>=99"').replace('"msgpack>=1.0",', '"msgpack>=1.0",\n    "flask>=3",')
    (tmp_path / "pyproject.toml").write_text(changed)
    problems = lock_check.disagreements(tmp_path / "pyproject.toml", LOCK)
    assert len(problems) == 2, problems
    assert any(p.startswith("scipy: requirements.lock pins ") and ">=99" in p for p in problems)
    assert any(p.startswith("flask: required by pyproject.toml") and "missing from requirements.lock" in p
               for p in problems)


def test_a_malformed_lock_line_is_reported(tmp_path):
    (tmp_path / "requirements.lock").write_text("numpy==1.26.4\nscipy>=1.10\n")
    with pytest.raises(ValueError, match=r"requirements.lock:2: not NAME==VERSION: 'scipy>=1.10'"):
        lock_check.read_lock(tmp_path / "requirements.lock")


def test_this_environment_is_exactly_the_lock():
    """The tests run in a venv built from the lock (CI builds a fresh one), nothing else in it."""
    installed = {lock_check.normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name, version in lock_check.read_lock(LOCK).items():
        assert installed.get(name) == version, (name, installed.get(name), version)
    assert lock_check.venv_differences(LOCK) == []


def bootstrap(root: Path, venv: Path) -> subprocess.CompletedProcess:
    script = f'source "{root}/tools/bootstrap.sh" && python -c "import sys; print(sys.prefix)"'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600, cwd=root,
                          env={"PATH": "/usr/bin:/bin", "NPCFACE_VENV": str(venv), "HOME": str(Path.home())})


def versions(venv: Path, *names: str) -> dict[str, str | None]:
    code = ("from importlib import metadata\nfor n in %r:\n    try: print(n, metadata.version(n))\n"
            "    except metadata.PackageNotFoundError: print(n, None)") % (names,)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True,
                         cwd=venv).stdout
    return {name: (None if version == "None" else version) for name, version in (l.split() for l in out.splitlines())}


def test_bootstrap_follows_the_lock_not_file_times(tmp_path):
    """A tiny project with the real set-up script: the venv is built from the lock, rebuilt to a
    changed lock, loses what a new lock dropped, and is repaired after a hand-made upgrade."""
    if shutil.which("python3") is None:
        pytest.skip("python3 is not on PATH")
    root, venv = tmp_path / "project", tmp_path / "venv"
    (root / "tools").mkdir(parents=True)
    for name in ("bootstrap.sh", "lock_check.py"):
        shutil.copy(ROOT / "tools" / name, root / "tools" / name)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "npcface"\nversion = "0.0.0"\ndependencies = []\n[tool.setuptools]\npackages = []\n')
    pins = lock_check.read_lock(LOCK)
    base = f"pip=={pins['pip']}\nsetuptools=={pins['setuptools']}\n"
    lock = root / "requirements.lock"

    lock.write_text(base + "iniconfig==2.1.0\n")
    first = bootstrap(root, venv)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(venv)
    assert versions(venv, "iniconfig", "npcface") == {"iniconfig": "2.1.0", "npcface": "0.0.0"}

    quiet = bootstrap(root, venv)  # nothing changed: nothing installed
    assert quiet.returncode == 0 and "installing" not in quiet.stderr

    lock.write_text(base + "iniconfig==2.3.0\npluggy==1.6.0\n")
    shutil.copystat(root / "pyproject.toml", lock)  # same mtime as before: only the content says it changed
    assert bootstrap(root, venv).returncode == 0
    assert versions(venv, "iniconfig", "pluggy") == {"iniconfig": "2.3.0", "pluggy": "1.6.0"}

    lock.write_text(base + "iniconfig==2.3.0\n")  # a package dropped from the lock leaves the venv
    assert bootstrap(root, venv).returncode == 0
    assert versions(venv, "iniconfig", "pluggy") == {"iniconfig": "2.3.0", "pluggy": None}

    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "iniconfig==2.1.0"], check=True,
                   capture_output=True)  # changed by hand; the stamp still matches the lock
    repaired = bootstrap(root, venv)
    assert repaired.returncode == 0 and "installing" in repaired.stderr
    assert versions(venv, "iniconfig") == {"iniconfig": "2.3.0"}


def test_copies_that_ray_bundles_are_not_taken_for_installed_packages():
    """Imported, ray puts its own psutil and colorama on sys.path; they are not pip's packages."""
    code = ("import sys, ray; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import lock_check\n"
            "assert any('thirdparty_files' in p for p in sys.path)\n"
            "print(lock_check.venv_differences(Path(sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "tools"), str(LOCK)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
