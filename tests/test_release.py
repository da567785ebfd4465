"""The package as users get it: `python -m build` output, checked and installed from scratch.

One wheel and one sdist are built (with build isolation, as a release does)
and `twine check`ed; the wheel is installed into a fresh virtualenv and
smoke-tested from outside the source tree, first alone and then with its
extras (tests/support/wheel_smoke.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import apisec
from tests.test_public_surface import PUBLIC_MODULES

pytestmark = pytest.mark.release

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "tests" / "support" / "wheel_smoke.py"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


@dataclass
class Dist:
    wheel: Path
    sdist: Path


@dataclass
class Installed:
    """What the fresh virtualenv answered, before and after the extras went in."""

    core: subprocess.CompletedProcess[str]
    extras: subprocess.CompletedProcess[str]
    commands: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """`python -m build`: an sdist, then a wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    ok(run(sys.executable, "-m", "build", "--outdir", out, ROOT))
    (wheel,) = out.glob("apisec-*.whl")
    (sdist,) = out.glob("apisec-*.tar.gz")
    return Dist(wheel=wheel, sdist=sdist)


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a fresh virtualenv, exercised from a directory outside the checkout."""
    home = tmp_path_factory.mktemp("fresh")
    venv = home / "venv"
    ok(run(sys.executable, "-m", "venv", venv))
    python, bindir = venv / "bin" / "python", venv / "bin"
    pip = (python, "-m", "pip", "install", "-q", "--disable-pip-version-check")
    smoke = home / "wheel_smoke.py"
    shutil.copy(SMOKE, smoke)

    ok(run(*pip, dist.wheel))
    core = run(python, "-I", smoke, "core", *PUBLIC_MODULES, cwd=home)
    commands = {
        "help": run(bindir / "apisec", "--help", cwd=home),
        "version": run(bindir / "apisec", "--version", cwd=home),
        "keygen": run(bindir / "apisec", "keygen", "--prefix", "sk_test", "--json", cwd=home),
        "module": run(python, "-I", "-m", "apisec", "pkce", "--json", cwd=home),
    }
    ok(run(*pip, f"{dist.wheel}[redis,argon2,httpx]"))
    extras = run(python, "-I", smoke, "extras", *PUBLIC_MODULES, cwd=home)
    return Installed(core=core, extras=extras, commands=commands)


class TestDistributions:
    def test_twine_accepts_the_wheel_and_the_sdist(self, dist: Dist) -> None:
        """`twine check` passes both files (metadata and the README render for PyPI)."""
        result = ok(run(sys.executable, "-m", "twine", "check", "--strict", dist.wheel, dist.sdist))
        assert result.stdout.count("PASSED") == 2

    def test_the_version_has_one_source(self, dist: Dist) -> None:
        """The wheel's version is apisec.__version__; pyproject.toml declares it dynamic."""
        pyproject = (ROOT / "pyproject.toml").read_text()
        assert re.search(r'^dynamic = \["version"\]$', pyproject, re.MULTILINE)
        assert not re.search(r"^version\s*=", pyproject, re.MULTILINE)
        assert 'path = "apisec/__init__.py"' in pyproject
        assert dist.wheel.name.startswith(f"apisec-{apisec.__version__}-")
        with zipfile.ZipFile(dist.wheel) as wheel:
            metadata = wheel.read(f"apisec-{apisec.__version__}.dist-info/METADATA").decode()
        assert f"\nVersion: {apisec.__version__}\n" in metadata

    def test_the_changelog_has_a_section_for_this_version(self) -> None:
        """CHANGELOG.md opens with [Unreleased], then the release this version prepares."""
        headings = re.findall(r"^## \[([^]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
        release = re.match(r"\d+\.\d+\.\d+", apisec.__version__)
        assert release is not None
        assert headings[:2] == ["Unreleased", release.group()]

    def test_the_wheel_ships_the_package_typed_and_licensed(self, dist: Dist) -> None:
        """The wheel holds apisec with py.typed, the CLI entry point and the licence, no tests."""
        with zipfile.ZipFile(dist.wheel) as wheel:
            names = wheel.namelist()
            info = f"apisec-{apisec.__version__}.dist-info"
            entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        assert "apisec/py.typed" in names
        assert "apisec/demo/__init__.py" in names
        assert f"{info}/licenses/LICENSE" in names
        assert "apisec = apisec.cli:main" in entry_points
        assert {name.split("/")[0] for name in names} == {"apisec", info}

    def test_the_sdist_can_rebuild_everything(self, dist: Dist) -> None:
        """The sdist holds the sources, tests, docs and changelog, and no local clutter."""
        with tarfile.open(dist.sdist) as sdist:
            names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        wanted = {
            "apisec/py.typed",
            "tests/test_release.py",
            "docs/index.md",
            "CHANGELOG.md",
            "SECURITY.md",
            "LICENSE",
            "pyproject.toml",
            "docs/conf.py",
        }
        assert wanted <= names
        assert not [n for n in names if n.startswith((".venv", ".nox", "dist/")) or ".pyc" in n]


class TestInstalledWheel:
    def test_every_module_and_feature_works_from_the_bare_wheel(self, installed: Installed) -> None:
        """Without extras every core module imports and works; extras fail on their package."""
        assert installed.core.returncode == 0, installed.core.stdout + installed.core.stderr
        assert installed.core.stdout.splitlines()[-1] == f"smoke ok core {apisec.__version__}"

    def test_extras_make_the_lazy_names_and_modules_work(self, installed: Installed) -> None:
        """With [redis,argon2,httpx] the lazy Redis stores, Argon2id and outbound load."""
        assert installed.extras.returncode == 0, installed.extras.stdout + installed.extras.stderr
        assert installed.extras.stdout.splitlines()[-1] == f"smoke ok extras {apisec.__version__}"

    def test_the_command_is_installed(self, installed: Installed) -> None:
        """`apisec --help`, `--version`, `keygen --json` and `python -m apisec` work."""
        help_, version, keygen, module = (
            installed.commands[name] for name in ("help", "version", "keygen", "module")
        )
        assert help_.returncode == 0 and "keygen" in help_.stdout
        assert version.stdout.strip() == f"apisec {apisec.__version__}"
        assert keygen.returncode == 0, keygen.stderr
        created = json.loads(keygen.stdout)
        assert created["key"].startswith("sk_test_")
        assert created["record"]["key_hash"] == created["hash"]
        assert module.returncode == 0 and set(json.loads(module.stdout)) >= {"verifier"}
