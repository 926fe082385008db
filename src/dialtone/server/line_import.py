"""Bulk import of lines (`dialtone lines import`): a CSV of any size, all rows or none.

The CSV has a header row with `number`, `client_name`, and `password` (hashed here) and/or
`password_hash` (a ready Argon2id hash in PHC format, checked, not recomputed); an optional
`region` column says how to read national numbers (else the default region). Rows are counted
as a spreadsheet shows them: the header is row 1.

The file is streamed, never held in memory, in three steps:

1. every row is checked and put in a private scratch SQLite file, where duplicates within the
   file are found by SQL (a million numbers and names would not fit in a small memory as sets);
2. plain passwords are hashed with Argon2id on every core — threads, since argon2-cffi
   releases the GIL (as fast as a process pool here, see bench/registry_scale.py), reading
   the file a second time so no password is ever written anywhere;
3. the rows go to the registry in one transaction, in batches (SQLAlchemy Core executemany;
   COPY on PostgreSQL), each batch first checked against the lines already registered.

Any problem refuses the whole file, naming the first rows at fault, before any costly step.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dialtone import phone
from dialtone.server import passwords
from dialtone.server.db import Database
from dialtone.server.models import Line, utcnow
from dialtone.server.registry import RegistryError, check_client_name

BATCH = 5000
MAX_REPORTED = 20  # problems named in the refusal; the rest are counted

# Called as progress(step, done, total): step is "checking", "hashing" or "writing"; while
# checking, done and total are characters of the file, otherwise rows.
Progress = Callable[[str, int, int], None]

_LINES = Line.__table__
_EXTRA = "\0extra"  # marks a row with more cells than the header


@dataclass(frozen=True)
class Problem:
    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class ImportRefused(RegistryError):
    """The file was refused and nothing was imported; `problems` are the first rows at fault."""

    def __init__(self, problems: list[Problem], count: int) -> None:
        self.problems = problems
        self.count = count
        text = "\n".join(str(p) for p in problems)
        if count > len(problems):
            text += f"\n… and {count - len(problems)} more problem(s)"
        super().__init__(f"{text}\nnothing was imported ({count} problem(s) in the file)")


@dataclass(frozen=True)
class ImportResult:
    imported: int
    hashed: int  # rows whose password was hashed here (the others brought a hash)
    seconds: float


@dataclass
class _Columns:
    password: bool
    password_hash: bool
    region: bool


def import_lines(
    db: Database,
    source: Path,
    default_region: str | None = None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    use_copy: bool = True,
) -> ImportResult:
    """Import every row of the CSV at `source` in one transaction, or raise ImportRefused.

    `workers`: threads hashing plain passwords (default: the CPUs this process may use).
    `use_copy`: on PostgreSQL write with COPY rather than INSERT (faster; same result)."""
    started = time.perf_counter()
    report: Progress = progress or (lambda step, done, total: None)
    with tempfile.TemporaryDirectory(prefix="dialtone-import-") as scratch_dir:
        scratch = sqlite3.connect(Path(scratch_dir) / "rows.db")
        try:
            # A throwaway file: nothing in it must survive a crash.
            scratch.execute("PRAGMA journal_mode=OFF")
            scratch.execute("PRAGMA synchronous=OFF")
            scratch.execute(
                "CREATE TABLE rows (row INTEGER PRIMARY KEY, phone_number TEXT NOT NULL,"
                " client_name TEXT NOT NULL, password_hash TEXT)"
            )
            valid, pending = _check(scratch, source, default_region, report)
            if pending:
                _hash(scratch, source, pending, workers or _cpus(), report)
            _write(db, scratch, valid, use_copy, report)
        finally:
            scratch.close()
    return ImportResult(valid, pending, time.perf_counter() - started)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _rows(source: Path, report: Progress | None) -> tuple[_Columns, Iterator[dict[str, str]]]:
    """The header's columns and the rows (cells by stripped column name), streamed."""
    size = source.stat().st_size
    handle = source.open(newline="", encoding="utf-8-sig")

    def counted() -> Iterator[str]:
        read = 0
        for number, text in enumerate(handle):
            read += len(text)
            if report is not None and number % BATCH == 0:
                report("checking", min(read, size), size)
            yield text
        if report is not None:
            report("checking", size, size)

    reader = csv.reader(counted())
    header = [name.strip() for name in next(reader, [])]
    names = set(header)
    if not {"number", "client_name"} <= names or not names & {"password", "password_hash"}:
        handle.close()
        raise RegistryError(
            "the CSV needs a header row: number,client_name,password "
            "(or password_hash, an Argon2id hash in PHC format; optionally region)"
        )
    columns = _Columns("password" in names, "password_hash" in names, "region" in names)

    def cells() -> Iterator[dict[str, str]]:
        with handle:
            for values in reader:
                if len(values) > len(header):
                    yield {_EXTRA: ""}
                elif values:  # a blank line is no row
                    yield dict(zip(header, values, strict=False))

    return columns, cells()


def _plain_password(cells: dict[str, str]) -> str | None:
    """The row's plain password when it has one and no ready hash."""
    if (cells.get("password_hash") or "").strip():
        return None
    return cells.get("password") or None


def _check_row(cells: dict[str, str], default_region: str | None) -> tuple[str, str, str | None]:
    """(E.164 number, client name, ready hash or None) or RegistryError saying what is wrong."""
    if _EXTRA in cells:
        raise RegistryError(
            "the row has more cells than the header (a password_hash has commas: quote it, "
            'as in "$argon2id$v=19$m=65536,t=3,p=4$…")'
        )
    region = (cells.get("region") or "").strip().upper() or default_region
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise RegistryError(f"region {region!r} is not an ISO region code such as JP")
    try:
        e164 = phone.to_e164((cells.get("number") or "").strip(), region)
    except phone.InvalidNumber as exc:
        raise RegistryError(str(exc)) from None
    client_name = check_client_name((cells.get("client_name") or "").strip())
    ready = (cells.get("password_hash") or "").strip()
    password = cells.get("password") or ""
    if ready and password:
        raise RegistryError("give a password or a password_hash, not both")
    try:
        if ready:
            passwords.check_hash(ready)
            return e164, client_name, ready
        if not password:
            raise RegistryError("the row has no password (nor password_hash)")
        passwords.check_policy(password)
    except (passwords.UnacceptableHash, passwords.WeakPassword) as exc:
        raise RegistryError(str(exc)) from None
    return e164, client_name, None


def _check(
    scratch: sqlite3.Connection, source: Path, default_region: str | None, report: Progress
) -> tuple[int, int]:
    """Step 1: every row checked and staged; (valid rows, rows to hash) or ImportRefused."""
    _, rows = _rows(source, report)
    problems: list[Problem] = []
    count = valid = pending = 0
    batch: list[tuple[int, str, str, str | None]] = []
    for row, cells in enumerate(rows, start=2):
        try:
            e164, client_name, ready = _check_row(cells, default_region)
        except RegistryError as exc:
            count += 1
            if len(problems) < MAX_REPORTED:
                problems.append(Problem(row, str(exc)))
            continue
        valid += 1
        pending += ready is None
        batch.append((row, e164, client_name, ready))
        if len(batch) >= BATCH:
            scratch.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)
            batch.clear()
    scratch.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)
    if not valid and not count:
        raise RegistryError("the CSV has no rows")
    duplicates, duplicate_count = _duplicates(scratch)
    count += duplicate_count
    if count:
        raise ImportRefused(
            sorted(problems + duplicates, key=lambda p: p.row)[:MAX_REPORTED], count
        )
    return valid, pending


def _duplicates(scratch: sqlite3.Connection) -> tuple[list[Problem], int]:
    """Rows repeating an earlier row's number or client name, by SQL over the scratch file."""
    problems: list[Problem] = []
    count = 0
    for column, show in (
        ("phone_number", lambda value: value),
        ("client_name", lambda value: f"client {value!r}"),
    ):
        scratch.execute(f"CREATE INDEX rows_{column} ON rows ({column}, row)")
        repeats = (
            f"FROM rows r JOIN (SELECT {column} AS value, MIN(row) AS first FROM rows"
            f" GROUP BY {column} HAVING COUNT(*) > 1) d ON r.{column} = d.value AND r.row > d.first"
        )
        count += scratch.execute(f"SELECT COUNT(*) {repeats}").fetchone()[0]
        for row, value, first in scratch.execute(
            f"SELECT r.row, d.value, d.first {repeats} ORDER BY r.row LIMIT {MAX_REPORTED}"
        ):
            problems.append(Problem(row, f"{show(value)} appears twice (first on row {first})"))
    return problems, count


def _hash(
    scratch: sqlite3.Connection, source: Path, pending: int, workers: int, report: Progress
) -> None:
    """Step 2: the plain passwords, read again from the file and hashed on every core."""
    _, rows = _rows(source, None)
    chunk = max(workers * 16, 64)  # enough work per round to keep every thread busy
    done = 0
    report("hashing", 0, pending)
    with ThreadPoolExecutor(workers, thread_name_prefix="argon2") as pool:
        for batch in _chunks(
            (
                (row, password)
                for row, cells in enumerate(rows, start=2)
                if (password := _plain_password(cells)) is not None
            ),
            chunk,
        ):
            hashes = pool.map(passwords.hash_password, [password for _, password in batch])
            updated = scratch.executemany(
                "UPDATE rows SET password_hash = ? WHERE row = ? AND password_hash IS NULL",
                [(hashed, row) for hashed, (row, _) in zip(hashes, batch, strict=True)],
            ).rowcount
            if updated != len(batch):
                raise RegistryError("the file changed while it was being imported; try again")
            done += updated
            report("hashing", done, pending)
    if done != pending:
        raise RegistryError("the file changed while it was being imported; try again")


def _chunks(items: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(
    db: Database, scratch: sqlite3.Connection, total: int, use_copy: bool, report: Progress
) -> None:
    """Step 3: one transaction; each batch checked against the registry, then written."""
    problems: list[Problem] = []
    count = done = 0
    now = utcnow()
    report("writing", 0, total)
    try:
        with db.engine.begin() as connection:
            copy = use_copy and connection.dialect.name == "postgresql"
            cursor = scratch.execute(
                "SELECT row, phone_number, client_name, password_hash FROM rows ORDER BY row"
            )
            while batch := cursor.fetchmany(BATCH):
                clashes = _clashes(connection, batch)
                count += len(clashes)
                problems.extend(clashes[: MAX_REPORTED - len(problems)])
                if not count:  # once refused, only look for more problems to report
                    (_copy if copy else _insert)(connection, batch, now)
                done += len(batch)
                report("writing", done, total)
            if count:
                raise ImportRefused(problems, count)  # leaving the block rolls back
    except IntegrityError:
        # Someone registered one of these numbers or names while we were writing.
        raise RegistryError(
            "a number or client name of the file was registered meanwhile; nothing was imported"
        ) from None


def _clashes(connection: Connection, batch: list[tuple[int, str, str, str]]) -> list[Problem]:
    by_number = {number: row for row, number, _, _ in batch}
    by_name = {name: row for row, _, name, _ in batch}
    found = connection.execute(
        select(_LINES.c.phone_number, _LINES.c.client_name).where(
            _LINES.c.phone_number.in_(by_number) | _LINES.c.client_name.in_(by_name)
        )
    ).all()
    problems = []
    for number, name in found:
        if number in by_number:
            problems.append(Problem(by_number[number], f"{number} is already registered"))
        if name in by_name:
            problems.append(Problem(by_name[name], f"client {name!r} is already registered"))
    return sorted(problems, key=lambda p: p.row)


def _insert(connection: Connection, batch: list[tuple[int, str, str, str]], now: object) -> None:
    connection.execute(
        insert(_LINES),
        [
            {
                "phone_number": number,
                "client_name": name,
                "password_hash": password_hash,
                "created_at": now,
                "updated_at": now,
            }
            for _, number, name, password_hash in batch
        ],
    )


def _copy(connection: Connection, batch: list[tuple[int, str, str, str]], now: object) -> None:
    """PostgreSQL's COPY through psycopg, in the same transaction."""
    import psycopg

    raw = connection.connection.driver_connection
    try:
        with (
            raw.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(
                "COPY lines (phone_number, client_name, password_hash, created_at, updated_at)"
                " FROM STDIN"
            ) as copy,
        ):
            for _, number, name, password_hash in batch:
                copy.write_row((number, name, password_hash, now, now))
    except psycopg.IntegrityError as exc:  # the driver's own, not wrapped by SQLAlchemy
        raise IntegrityError("COPY lines", None, exc) from None
