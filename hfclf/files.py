"""Writing files safely: atomic outputs, writable-location checks, inputs that must not be overwritten, and the lock
that keeps two processes out of one output folder.

Every file hfclf writes goes through [`atomic_output`]: it is written under a temporary name in the same folder and
renamed over the target at the end, so a crash (even `kill -9`) leaves either the old file or the new one, never a
truncated one.
"""

import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import HfclfInputError, first_line

logger = logging.getLogger("hfclf")

LOCK_FILE = ".hfclf.lock"
# Names hfclf leaves in an output folder only while it works there (a lock, temporary files of atomic writes).
TEMPORARY_PREFIX = ".hfclf-tmp"


def _default_mode(mode: int = 0o666) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def give_default_permissions(folder) -> None:
    """Give the files just written in `folder` a new file's permissions (0666 less the umask): transformers writes
    `model.safetensors` through a temporary file readable by its owner only, so a shared model would not be."""
    mode = _default_mode()
    for path in Path(folder).iterdir():
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def make_folder(path) -> Path | None:
    """Create `path` and its missing parents; returns the highest folder created (None if it existed)."""
    path = Path(path)
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def remove_if_empty(path, top: Path | None) -> None:
    """Remove `path` and its parents up to `top` (the highest folder created for them) while they are empty."""
    if top is None:
        return
    for folder in (Path(path), *Path(path).parents):
        try:
            folder.rmdir()  # fails on a folder that is not empty, or that another process just wrote into
        except OSError:
            return
        if folder == top:
            return


@contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends without an error it is renamed to `path`.

    The parent folder is created when missing. On an error the temporary file is removed and `path` is untouched.
    What a killed process left while writing `path` (a temporary file naming it and its process) is removed first.
    """
    path = Path(path)
    created = make_folder(path.parent)
    _remove_dead_temporaries(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}-{path.name}.{process_tag()}.")
    os.close(fd)
    temporary = Path(temporary)
    try:
        yield temporary
        os.chmod(temporary, _default_mode())  # mkstemp creates files readable by their owner only
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        remove_if_empty(path.parent, created)
        raise


def process_tag() -> str:
    """This process as hfclf names it in what it leaves behind (temporary files, search trials): its id and a tag
    of its host."""
    return f"{os.getpid()}-{_host_tag()}"


def died_here(tag: str) -> bool:
    """Whether the process named by `tag` (a [`process_tag`]) ran on this host and is no longer running."""
    pid, host = process_id(tag), tag.partition("-")[2]
    return pid.isdigit() and host == _host_tag() and not _running(int(pid))


def process_id(tag: str) -> str:
    """The process id in a [`process_tag`]."""
    return tag.partition("-")[0]


@functools.cache
def _host_tag() -> str:
    return hashlib.sha1(_hostname().encode()).hexdigest()[:8]


def _remove_dead_temporaries(path) -> None:
    """Remove the temporary files that processes on this host, killed while writing `path`, left next to it."""
    path = Path(path)
    ours = re.compile(rf"{re.escape(TEMPORARY_PREFIX)}-{re.escape(path.name)}\.(\d+-[0-9a-f]{{8}})\.")
    with os.scandir(path.parent) as entries:
        for entry in entries:
            writer = ours.match(entry.name)
            if writer and entry.is_file(follow_symlinks=False) and died_here(writer.group(1)):
                Path(entry.path).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    if os.name == "nt" or pid == os.getpid():  # on Windows, os.kill(pid, 0) would send the process Ctrl+C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def write_text(path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def read_json(path) -> dict | None:
    """A JSON file's content, or None when it does not exist; a clean error when it is unreadable or truncated."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise HfclfInputError(f"{path} is a folder, where a JSON file was expected; remove or rename it.") from None
    except (OSError, ValueError) as err:
        raise HfclfInputError(
            f"{path} is not readable JSON ({first_line(err)}): the file is damaged or truncated; restore it, or "
            "train or export the model again."
        ) from None


def write_json(path, value, **kwargs) -> Path:
    """Write `value` as indented, strict JSON to `path` atomically: NaN and infinities become `null`, which every
    JSON parser reads (Python's bare `NaN` is not JSON)."""
    return write_text(path, json.dumps(_finite(value), indent=2, allow_nan=False, **kwargs))


def _finite(value):
    """`value` with every float that is not finite replaced by None, through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


@contextmanager
def atomic_folder(path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; when the block ends without an error it takes `path`'s place.

    An empty folder at `path` is replaced; anything else only with `replace`, and only once the new folder is
    complete (the old one is moved aside, the new one renamed in, then the old one deleted).
    """
    path = Path(path)
    created = make_folder(path.parent)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}-{path.name}."))
    try:
        yield temporary
        os.chmod(temporary, _default_mode(0o777))
        old = None
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
        elif path.exists() or path.is_symlink():
            if not replace:
                raise HfclfInputError(f"{path} appeared while it was being written; choose another folder.")
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}-{path.name}.old.")) / "old"
            os.rename(path, old)
        os.rename(temporary, path)
        if old is not None:
            shutil.rmtree(old.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        remove_if_empty(path.parent, created)
        raise


def check_writable(path, what: str) -> None:
    """Refuse an output location that cannot be written, before any work is done.

    `path` is a file or folder to create; the nearest existing folder above it must accept a new file (tried, not
    guessed from permission bits, which do not apply to root or to read-only file systems).
    """
    path = Path(path)
    if path.is_dir() and what.endswith("file"):
        raise HfclfInputError(f"{what} {path} is a folder; pass a file name, e.g. {path / 'out.csv'}.")
    existing = path if path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise HfclfInputError(
            f"{what} {path} cannot be written: {existing} is a file, not a folder; choose another path."
        )
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=TEMPORARY_PREFIX):
            pass
    except OSError as err:
        raise HfclfInputError(
            f"{what} {path} cannot be written ({err.strerror or type(err).__name__} in {existing}); choose a "
            "writable location."
        ) from None


def check_not_input(output, inputs: Iterable, what: str = "--output") -> None:
    """Refuse an output file that is one of the command's own input files (writing it would destroy the input)."""
    output = Path(output)
    if not output.exists():
        return
    for source in inputs:
        if source and str(source) != "-" and Path(source).exists() and os.path.samefile(output, source):
            raise HfclfInputError(
                f"{what} {output} is an input of this command ({source}); writing it would replace the input. "
                "Choose another output file."
            )


# ------------------------------------------------------------------------------------------------------------ lock

_held_locks: set[Path] = set()  # folders this process holds: taking one again is a no-op


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextmanager
def folder_lock(folder, what: str = "Output folder", wait: float = 0.0) -> Iterator[None]:
    """Hold `<folder>/.hfclf.lock` for the life of the block; a folder locked by another live process is refused
    (after waiting up to `wait` seconds for it).

    The lock is an OS file lock, which dies with its process: a lock file left by a killed run is taken over, with a
    warning naming the dead process. The same process may take the lock again (a comparison and its variants).
    Folders that this call created and that are empty again at the end are removed.
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _held_locks:
        yield
        return
    created = None
    handle = None
    try:
        created = _make_lock_folder(folder, what)
        deadline = time.monotonic() + wait
        while True:
            handle = _open_lock_file(folder, what)
            if _try_lock(handle):
                if _same_file(handle, folder / LOCK_FILE):
                    break
                handle.close()  # its holder finished and removed it between our open and our lock: take the new one
                continue
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            handle = None
            if time.monotonic() >= deadline:
                raise HfclfInputError(
                    f"{what} {folder} is in use by {holder}; wait for it to finish, or choose another folder."
                )
            time.sleep(0.2)
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            logger.warning("Taking over the lock of %s from %s, which is no longer running", folder, previous)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {_hostname()}")
        handle.flush()
        _held_locks.add(key)
        try:
            yield
        finally:
            _held_locks.discard(key)
            (folder / LOCK_FILE).unlink(missing_ok=True)  # unlinked while still locked: no one can slip in between
    finally:
        if handle is not None:
            handle.close()
        remove_if_empty(folder, created)


def remove_dead_lock(folder) -> None:
    """Remove the lock file that a killed process left in `folder` (a live holder keeps it, and removes it itself)."""
    if (Path(folder) / LOCK_FILE).exists():
        with suppress(HfclfInputError), folder_lock(folder):
            pass


def _make_lock_folder(folder: Path, what: str) -> Path | None:
    if folder.exists() and not folder.is_dir():
        raise HfclfInputError(f"{what} {folder} is a file; pass a folder path.")
    try:
        return make_folder(folder)
    except OSError as err:
        raise HfclfInputError(
            f"{what} {folder} cannot be written ({err.strerror or type(err).__name__}); choose a writable location."
        ) from None


def _open_lock_file(folder: Path, what: str):
    try:
        return open(folder / LOCK_FILE, "a+")
    except OSError as err:
        raise HfclfInputError(
            f"{what} {folder} cannot be written ({err.strerror or type(err).__name__}); choose a writable location."
        ) from None


def _same_file(handle, path: Path) -> bool:
    """Whether the locked file is still the one at `path` (another process may have removed it meanwhile)."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _hostname() -> str:
    import socket

    return socket.gethostname()


def hfclf_files(folder) -> set[str]:
    """Names in `folder` that belong to hfclf's own bookkeeping (lock, temporary files), not to the user's outputs."""
    return {p.name for p in Path(folder).iterdir() if p.name == LOCK_FILE or p.name.startswith(TEMPORARY_PREFIX)}
