"""The API server as an AWS Lambda deployment package (a .zip for the python3.x runtime).

The server (`dialtone` without the emulator) and its core dependencies as wheels built for
Lambda's Linux (manylinux, the chosen architecture and Python), with bytecode compiled by
that Python: `/var/task` is read-only, so modules without `.pyc` would be compiled again
on every cold start. The zip is reproducible: same inputs, same bytes.

twilio goes in without its REST client (`twilio.rest`, 22 MB of source, and requests and
aiohttp, which only it uses): the server needs only `twilio.jwt`, `twilio.twiml` and
`twilio.request_validator` (tests/test_boundaries.py keeps it so).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
PYTHONS = ("3.11", "3.12", "3.13")
# Lambda's python3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34), python3.11 on
# Amazon Linux 2 (glibc 2.26): wheels must not need a newer glibc.
_GLIBC = {"3.11": 26, "3.12": 34, "3.13": 34}
ZIPPED_LIMIT = 50 * 1024 * 1024  # direct upload; through S3 (sam deploy) only the next one counts
UNZIPPED_LIMIT = 250 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: fixed, so builds are reproducible
_SERVER_SIDE_EXCLUDED = ("emulator",)  # never on Lambda: it is the local stand-in for Twilio
_PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath")
_WITHOUT_DEPENDENCIES = ("twilio",)  # see above
_UNUSED_PARTS = ("twilio/rest",)
_SERVE_ONLY = ("httptools",)  # `dialtone serve`'s HTTP parser: Lambda speaks to Mangum


class PackageError(Exception):
    """The package cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Package:
    path: Path
    architecture: str
    python: str
    zipped: int
    unzipped: int
    files: int

    def summary(self) -> str:
        return (
            f"{self.path}: python{self.python} {self.architecture}, {self.files} files, "
            f"{_mb(self.zipped)} zipped (limit {_mb(ZIPPED_LIMIT)} for a direct upload), "
            f"{_mb(self.unzipped)} unzipped (limit {_mb(UNZIPPED_LIMIT)})"
        )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def platform_tags(architecture: str, python: str) -> list[str]:
    """Every manylinux tag a wheel may carry to run on the runtime's glibc (pip expands
    only the legacy manylinux2014/2010 aliases itself)."""
    machine = ARCHITECTURES[architecture]
    first = 5 if machine == "x86_64" else 17
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(_GLIBC[python], first - 1, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def core_requirements() -> list[str]:
    """dialtone's own requirements without any extra (no emulator, no boto3)."""
    requirements = importlib.metadata.requires("dialtone") or []
    return [r for r in requirements if "extra ==" not in r.replace("extra==", "extra ==")]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def _is_python(executable: str, python: str) -> bool:
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == python


def _candidates(python: str) -> Iterator[str]:
    if found := shutil.which(f"python{python}"):
        yield found
    # pyenv's shim answers only for the selected version: look at its installed ones too.
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        versions = Path(root.stdout.strip() or "/nonexistent") / "versions"
        for folder in sorted(versions.glob(f"{python}.*"), reverse=True):
            yield str(folder / "bin" / f"python{python}")


def find_interpreter(python: str) -> str:
    """A Python of the target version, to compile bytecode Lambda's Python will use."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    for candidate in _candidates(python):
        if _is_python(candidate, python):
            return candidate
    raise PackageError(
        f"compiling bytecode for Lambda's python{python} needs a python{python} interpreter, "
        "and none was found: install one (e.g. `uv python install "
        f"{python}` or your distribution's python{python}) and give it with --interpreter"
    )


def _copy_dialtone(target: Path) -> None:
    source = Path(__file__).resolve().parent.parent  # the installed dialtone package

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in ("__pycache__", "node_modules") or n.endswith(".pyc")}
        if Path(folder) == source:
            skipped |= set(_SERVER_SIDE_EXCLUDED) & set(names)
        return skipped

    shutil.copytree(source, target / "dialtone", ignore=ignore)


def _prune(root: Path) -> None:
    """What Lambda never runs: scripts, packages' own tests, the runtime's boto3."""
    shutil.rmtree(root / "bin", ignore_errors=True)
    for name in (*_PROVIDED_BY_RUNTIME, *_UNUSED_PARTS):
        shutil.rmtree(root / name, ignore_errors=True)
    for folder in sorted(root.rglob("*"), reverse=True):
        if folder.is_dir() and folder.name in ("tests", "test", "__pycache__"):
            shutil.rmtree(folder)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def _zip(root: Path, out: Path) -> tuple[int, int]:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    unzipped = files = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in _walk(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), _EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            archive.writestr(info, data, compresslevel=9)
            unzipped += len(data)
            files += 1
    partial.replace(out)
    return unzipped, files


def build(
    out: Path,
    *,
    architecture: str = "arm64",
    python: str = "3.12",
    interpreter: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Package:
    if architecture not in ARCHITECTURES:
        raise PackageError(f"architecture must be one of {', '.join(ARCHITECTURES)}")
    if python not in PYTHONS:
        raise PackageError(f"Python must be one of {', '.join(PYTHONS)} (Lambda runtimes)")
    if interpreter and not _is_python(interpreter, python):
        raise PackageError(f"--interpreter {interpreter} is not a working Python {python}")
    compiler = interpreter or find_interpreter(python)
    with tempfile.TemporaryDirectory(prefix="dialtone-lambda-") as scratch:
        root = Path(scratch) / "task"
        progress(f"resolving wheels for python{python} {architecture} (pip)…")
        pip = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--target", str(root), "--only-binary=:all:",
            "--implementation", "cp", "--python-version", python,
        ]  # fmt: skip
        for tag in platform_tags(architecture, python):
            pip += ["--platform", tag]
        requirements = [r for r in core_requirements() if _name(r) not in _SERVE_ONLY]
        alone = [r for r in requirements if _name(r) in _WITHOUT_DEPENDENCIES]
        for step in (
            [r for r in requirements if r not in alone],
            ["--no-deps", *alone] if alone else [],
        ):
            if not step:
                continue
            result = subprocess.run([*pip, *step], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
                detail = "\n".join(errors) or result.stderr.strip()[-2000:]
                raise PackageError(
                    f"pip found no wheels for python{python} on Lambda's {architecture} Linux "
                    f"(glibc 2.{_GLIBC[python]}):\n{detail}"
                )
        _copy_dialtone(root)
        _prune(root)
        progress(f"compiling bytecode with {compiler}…")
        # unchecked-hash: zip keeps mtimes at 2 s resolution, so timestamp-checked .pyc
        # files could look stale on Lambda and be recompiled in memory at every cold start.
        compile_all = [
            compiler, "-m", "compileall", "-q", "-j", "0",
            "--invalidation-mode", "unchecked-hash",
            "-s", str(root), "-p", "/var/task", str(root),
        ]  # fmt: skip
        result = subprocess.run(compile_all, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-2000:]
            raise PackageError(f"compiling bytecode with {compiler} failed:\n{output}")
        tag = f"cpython-{python.replace('.', '')}"
        if not any(root.glob(f"dialtone/server/__pycache__/*.{tag}.pyc")):
            raise PackageError(f"{compiler} is not Python {python}: no {tag} bytecode")
        progress(f"writing {out}…")
        unzipped, files = _zip(root, out)
    package = Package(out, architecture, python, out.stat().st_size, unzipped, files)
    if unzipped > UNZIPPED_LIMIT:
        raise PackageError(f"{package.summary()}: over Lambda's unzipped limit")
    return package
