"""Files that hold secrets (the SQLite database, the embedded secret key, signing keys):
readable by their owner only, in folders only their owner can list.

Only what we create is made private: a folder or file an administrator made keeps the
permissions they gave it (a backup group may need to read it).
"""

from __future__ import annotations

import os
from pathlib import Path


def private_folder(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700; leave existing ones alone."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, 0o700)  # mkdir's mode goes through the umask


def private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 (and its folder, ``private_folder``) unless it
    exists; True when it was created here."""
    private_folder(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o077)
    except FileNotFoundError:
        return False
