"""Bulk import of lines on a real database (SQLite and PostgreSQL): all rows or none."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from dialtone.server import line_import
from dialtone.server.line_import import ImportRefused, import_lines
from dialtone.server.models import Line
from dialtone.server.registry import LineRegistry, RegistryError

# One hash made once at the server's parameters; an import may reuse it for many lines.
READY = PasswordHasher().hash("ready password 1")
WEAK = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("ready password 1")


def write(tmp_path: Path, text: str, name: str = "lines.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def count_lines(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Line))


@pytest.fixture
def lines(db):
    return LineRegistry(db, "JP")


def test_ready_hashes_are_stored_as_given_and_log_in(db, lines, tmp_path):
    path = write(
        tmp_path,
        "number,client_name,password_hash\n"
        f'050-3123-4567,DeviceId_0001,"{READY}"\n'
        f'+1 415 555 0199,desk_us,"{READY}"\n',
    )
    result = import_lines(db, path, "JP")
    assert (result.imported, result.hashed) == (2, 0)
    with db.session() as session:
        assert set(session.scalars(select(Line.password_hash))) == {READY}
    assert lines.authenticate("+14155550199", "ready password 1").client_name == "desk_us"
    assert lines.authenticate("+815031234567", "wrong password") is None


def test_plain_passwords_are_hashed_on_threads_and_regions_read_national_numbers(
    db, lines, tmp_path
):
    path = write(
        tmp_path,
        "number,client_name,password,password_hash,region\n"
        "050-3123-4567,DeviceId_0001,password one,,\n"
        "(415) 555-0199,desk_us,password two,,us\n"
        f'020 7946 0018,desk_uk,,"{READY}",GB\n',
    )
    seen: list[tuple[str, int, int]] = []
    result = import_lines(db, path, "JP", workers=2, progress=lambda *state: seen.append(state))
    assert (result.imported, result.hashed) == (3, 2)
    assert lines.authenticate("+815031234567", "password one").client_name == "DeviceId_0001"
    assert lines.authenticate("+14155550199", "password two").client_name == "desk_us"
    assert lines.authenticate("+442079460018", "ready password 1").client_name == "desk_uk"
    with db.session() as session:
        hashes = list(session.scalars(select(Line.password_hash)))
    assert all(h.startswith("$argon2id$") for h in hashes) and len(set(hashes)) == 3
    assert not any("password one" in h or "password two" in h for h in hashes)
    # The steps in order, each ending complete.
    steps = [step for step, _, _ in seen]
    assert sorted(set(steps), key=steps.index) == ["checking", "hashing", "writing"]
    for step in ("checking", "hashing", "writing"):
        last = [state for state in seen if state[0] == step][-1]
        assert last[1] == last[2] > 0


def test_every_problem_is_named_by_row_and_nothing_is_imported(db, lines, tmp_path):
    lines.add("+81-50-9999-0000", "existing", "password zero")
    path = write(
        tmp_path,
        "number,client_name,password,password_hash\n"  # row 1
        "050-3123-4567,a,password one,\n"  # 2: fine
        "nope,b,password two,\n"  # 3
        "+81 50 3123 4567,c,password three,\n"  # 4: number of row 2
        "050-1111-2222,a,password four,\n"  # 5: client of row 2
        "050-1111-3333,d,short,\n"  # 6
        f"050-1111-4444,e,,{READY}\n"  # 7: unquoted PHC hash
        f'050-1111-5555,f,,"{WEAK}"\n'  # 8
        f'050-1111-6666,g,,"{READY.replace("argon2id", "argon2i")}"\n'  # 9
        f'050-1111-7777,h,password eight,"{READY}"\n'  # 10
        "050-1111-8888,i,,\n"  # 11
        "050-1111-9999,bad name,password ten,\n"  # 12
        "050-9999-0000,j,password eleven,\n"  # 13: registered already
        "050-2222-0000,existing,password twelve,\n",  # 14: client registered already
    )
    with pytest.raises(ImportRefused) as caught:
        import_lines(db, path, "JP")
    refused = caught.value
    assert [p.row for p in refused.problems] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    text = str(refused)
    for needle in (
        "row 3: 'nope' is not a valid phone number",
        "row 4: +815031234567 appears twice (first on row 2)",
        "row 5: client 'a' appears twice (first on row 2)",
        "row 6: the password must have at least 8 characters",
        "row 7: the row has more cells than the header",
        "row 8: the password hash's parameters (m=1024,t=1,p=1) are below OWASP's minimum",
        "row 9: the password hash is argon2i, not argon2id",
        "row 10: give a password or a password_hash, not both",
        "row 11: the row has no password",
        "row 12: the client name 'bad name'",
        "nothing was imported (10 problem(s) in the file)",
    ):
        assert needle in text
    assert "password one" not in text and READY not in text
    assert count_lines(db) == 1
    # Rows fine on their own but clashing with the registry: found once the file is clean.
    path = write(
        tmp_path,
        "number,client_name,password\n"
        "050-3123-4567,a,password one\n"
        "050-9999-0000,j,password eleven\n"
        "050-2222-0000,existing,password twelve\n",
    )
    with pytest.raises(ImportRefused) as caught:
        import_lines(db, path, "JP")
    assert [str(p) for p in caught.value.problems] == [
        "row 3: +815099990000 is already registered",
        "row 4: client 'existing' is already registered",
    ]
    assert count_lines(db) == 1


def test_many_problems_are_counted_and_the_first_named(db, tmp_path, monkeypatch):
    monkeypatch.setattr(line_import, "BATCH", 7)  # problems spread over several batches
    rows = "".join(f"050-1111-{i:04d},c{i},short\n" for i in range(1000, 1050))
    with pytest.raises(ImportRefused) as caught:
        import_lines(db, write(tmp_path, "number,client_name,password\n" + rows), "JP")
    assert caught.value.count == 50
    assert [p.row for p in caught.value.problems] == list(range(2, 2 + line_import.MAX_REPORTED))
    assert "… and 30 more problem(s)" in str(caught.value)


@pytest.mark.parametrize("use_copy", [True, False], ids=["copy", "executemany"])
def test_a_failure_while_writing_leaves_nothing_behind(db, lines, tmp_path, monkeypatch, use_copy):
    """Batches already written are rolled back when a later one fails (one transaction)."""
    monkeypatch.setattr(line_import, "BATCH", 2)
    lines.add("+81-50-9999-0000", "existing", "password zero")
    # A writer that registers the last number between our check and our insert.
    monkeypatch.setattr(line_import, "_clashes", lambda connection, batch: [])
    rows = "".join(f'050-1111-{i:04d},c{i},"{READY}"\n' for i in range(1000, 1007))
    path = write(
        tmp_path, "number,client_name,password_hash\n" + rows + f'050-9999-0000,late,"{READY}"\n'
    )
    with pytest.raises(RegistryError, match="registered meanwhile; nothing was imported"):
        import_lines(db, path, "JP", use_copy=use_copy)
    assert [line.client_name for line in lines.list()] == ["existing"]


@pytest.mark.parametrize("use_copy", [True, False], ids=["copy", "executemany"])
def test_batches_write_every_row_once(db, lines, tmp_path, monkeypatch, use_copy):
    monkeypatch.setattr(line_import, "BATCH", 3)
    rows = "".join(f'050-1111-{i:04d},c{i},"{READY}"\n' for i in range(1000, 1010))
    result = import_lines(
        db, write(tmp_path, "number,client_name,password_hash\n" + rows), "JP", use_copy=use_copy
    )
    assert result.imported == 10 == count_lines(db)
    listed = lines.list()
    assert [line.phone_number for line in listed] == [f"+81501111{i}" for i in range(1000, 1010)]
    assert all(line.created_at.tzinfo is not None for line in listed)


def test_header_and_empty_files_are_refused(db, tmp_path):
    with pytest.raises(RegistryError, match="header row"):
        import_lines(db, write(tmp_path, "050-3123-4567,DeviceId_0001,password one\n"))
    with pytest.raises(RegistryError, match="header row"):
        import_lines(db, write(tmp_path, "number,client_name\n050-3123-4567,x\n"))
    with pytest.raises(RegistryError, match="no rows"):
        import_lines(db, write(tmp_path, "number,client_name,password\n\n"))
    assert count_lines(db) == 0


def test_the_command_imports_with_progress_and_refuses_with_status_1(db_url, tmp_path):
    """`dialtone lines import` as a user runs it: a real process, stderr not a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DIALTONE_"))}
    env |= {"DIALTONE_DATABASE_URL": db_url, "DIALTONE_DEFAULT_REGION": "JP"}
    dialtone = [sys.executable, "-m", "dialtone.cli"]
    good = write(
        tmp_path,
        "number,client_name,password,password_hash\n"
        "050-3123-4567,DeviceId_0001,password one,\n"
        f'050-3123-4568,DeviceId_0002,,"{READY}"\n',
    )
    done = subprocess.run(
        [*dialtone, "lines", "import", str(good)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "imported 2 line(s)" in done.stdout and "1 password(s) hashed" in done.stdout
    assert "\r" not in done.stderr  # plain lines for a log, no bar redraws
    assert "hashing" in done.stderr and "1/1 rows" in done.stderr and "done in" in done.stderr
    again = subprocess.run(
        [*dialtone, "lines", "import", str(good)], env=env, capture_output=True, text=True
    )
    assert again.returncode == 1
    assert "row 2: +815031234567 is already registered" in again.stderr
    assert "Traceback" not in again.stderr
