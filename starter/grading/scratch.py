"""Removing the grader's scratch folders, whatever a kernel left in them: `remove_tree` deletes a tree without
recursion (a tree can be deeper than Python's recursion limit or PATH_MAX), by names relative to the folder being
emptied, following no symbolic link, and gives this user back the right to empty a folder a kernel took it from."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW  # how a folder is opened: never through a link


def remove_tree(path: Path) -> None:
    """Delete the folder `path` and all it holds (links, fifos, sockets, read-only folders, any depth); `path`
    itself must not be a link (it is then left alone). What cannot go stays; nothing outside the tree is touched."""
    try:
        fd = os.open(path, FOLDER)
    except OSError:
        return
    try:
        _writable(fd)
        stack = [("", _emptied(fd), os.fstat(fd).st_ino)]  # per level: its name, its subfolders left, its inode
        while stack:
            name, pending, _ = stack[-1]
            if pending:
                child = pending.pop()
                opened = _enter(fd, child)
                if opened is not None:
                    fd = _switch(fd, opened)
                    stack.append((child, _emptied(fd), os.fstat(fd).st_ino))
                continue
            stack.pop()
            if stack:
                fd = _switch(fd, os.open("..", FOLDER, dir_fd=fd))
                if os.fstat(fd).st_ino != stack[-1][2]:
                    return  # the tree was moved meanwhile: stop rather than delete elsewhere
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=fd)
    except OSError:
        return
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _switch(old: int, new: int) -> int:
    """Close the descriptor `old` and go on with `new`."""
    os.close(old)
    return new


def _enter(fd: int, name: str) -> int | None:
    """Open the subfolder `name` of the folder `fd`, made this user's to empty; None if that is not possible."""
    try:
        with contextlib.suppress(PermissionError):
            return _writable(os.open(name, FOLDER, dir_fd=fd))
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)  # the folder itself, never what a link names
        finally:
            os.close(handle)
        return _writable(os.open(name, FOLDER, dir_fd=fd))
    except OSError:
        return None


def _writable(fd: int) -> int:
    """A folder's descriptor, after giving this user the right to empty it (a kernel may have taken it away)."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o700)
    return fd


def _emptied(fd: int) -> list[str]:
    """Delete everything in the folder `fd` but its subfolders, whose names it returns."""
    folders = []
    with contextlib.suppress(OSError), os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
    return folders
