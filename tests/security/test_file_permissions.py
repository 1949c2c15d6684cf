"""The embedded SQLite database is readable by its owner only, and so are the files SQLite
keeps beside it (-wal, -shm, -journal).

Peer class: a database of secrets created with the umask's world-readable default (CWE-276,
CWE-732), reported without a CVE against wg-portal (h44z/wg-portal#579), Baikal
(sabre-io/Baikal#602) and custodia (latchset/custodia#48). Review finding 11 of issue 15.
"""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import text

from idp.db import make_engine


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The usual umask of a login shell: files 0644, folders 0755 unless made otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_idp_init_creates_the_database_0600_in_a_folder_0700(idp, tmp_path, open_umask):
    database = tmp_path / "instance" / "data" / "idp.sqlite3"
    code, out, err = idp("init", environ={"IDP_DATABASE_URL": f"sqlite:///{database}"})
    assert code == 0, err
    assert mode(database) == 0o600
    assert mode(database.parent) == 0o700 and mode(database.parent.parent) == 0o700


def test_a_folder_the_administrator_made_keeps_its_mode(idp, tmp_path, open_umask):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    code, _, err = idp("init", environ={"IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}"})
    assert code == 0, err
    assert mode(folder) == 0o750 and mode(folder / "idp.sqlite3") == 0o600


def test_the_files_beside_the_database_are_private_too(tmp_path, open_umask):
    database = tmp_path / "db" / "idp.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:  # WAL mode: -wal and -shm exist while it is open
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('secret')"))
            connection.commit()
            beside = sorted(p.name for p in database.parent.iterdir())
            assert {"idp.sqlite3-wal", "idp.sqlite3-shm"} <= set(beside), beside
            assert {p.name: mode(p) for p in database.parent.iterdir()} == \
                {name: 0o600 for name in beside}
    finally:
        engine.dispose()
