"""The env file keeps what it had; settings are replaced in place or appended; 0600."""

import stat

from dotenv import dotenv_values

from dialtone.account.envfile import update_env_file


def test_a_new_file_is_private(tmp_path):
    path = tmp_path / ".env"
    update_env_file(path, {"TWILIO_API_SECRET": "s3cr3t"})
    assert path.read_text() == "TWILIO_API_SECRET=s3cr3t\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_other_lines_are_kept_and_assignments_replaced_in_place(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport TWILIO_API_KEY=SKold\n\nFOO = bar\nLAST=1")
    path.chmod(0o644)
    update_env_file(path, {"TWILIO_API_KEY": "SKnew", "TWILIO_TWIML_APP_SID": "AP1"})
    assert path.read_text() == (
        "# comment\nTWILIO_API_KEY=SKnew\n\nFOO = bar\nLAST=1\nTWILIO_TWIML_APP_SID=AP1\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it now holds secrets


def test_values_read_back_as_written(tmp_path):
    path = tmp_path / ".env"
    odd = "a b#c'd\"e$f\\g"
    update_env_file(path, {"ODD": odd, "PLAIN": "abc123"})
    values = dotenv_values(path)
    assert values["PLAIN"] == "abc123"
    assert values["ODD"] == odd
