"""``collect ARCHIVE``: an LMS download (.zip or .tar.gz) into ``submitted/<student>/<assignment>/``.

The archive is extracted here, not by ``nbgrader zip_collect``: nbgrader extracts archives inside
the archive recursively and matches file names at any depth, so a student's upload could carry
another student's notebook, a setuid file or a bomb. :func:`collect` works in three steps and
writes nothing until the first two have passed:

1. **Scan** (:func:`scan`, nothing written). Every member is read from the archive's own
   directory (zip) or headers (tar) and refused, with one line each, when it is
   a link (symbolic or hard), a device file, a FIFO or any other non-plain file;
   an absolute path or a path that climbs out with ``..``;
   a nested archive, by its name (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``, ``.gz``, ``.bz2``,
   ``.xz``, ``.7z``, ``.rar``, ...) or, for a file that would be collected, by its first bytes;
   encrypted, or larger uncompressed than ``c.Collect.max_file_mb``.
   The whole archive is refused before anything is decompressed when its declared sizes add up to
   more than ``c.Collect.max_total_mb`` or it has more than ``c.Collect.max_members`` members.
   Headers can lie: every file to be collected is decompressed once, bytes counted, checksum
   checked, and a tar stream is never read beyond what its members allow.
2. **Plan** (:func:`plan`). Each notebook goes to the student its own name in the archive names,
   by ``c.FileNameCollectorPlugin.named_regexp`` (``<student_id>_<YYYYMMDDTHHMMSS>_<notebook>.ipynb``,
   the timestamp optional), and nowhere else. Refused: a name that does not match (it would be
   lost), an unknown student (import the roster or pass ``--add-students``), a timestamp that is
   not a date, the same notebook twice (unless ``--keep-latest`` and both have timestamps), a
   file naming one student inside a folder named after another. Other files are left out, said so.
3. **Write**. The notebooks are extracted into a private staging folder as plain files, mode 0644
   (no setuid, setgid or exec bit), bytes counted again; ``timestamp.txt`` is written as nbgrader
   writes it (the newest timestamp of the student's files, ``isoformat(" ")``), and each student's
   folder then replaces their own earlier one by a rename. Another student's folder is never
   touched, and nothing is written through a symbolic link in ``submitted/``.

Any refusal raises :class:`CollectError` with one line per refused member; ``submitted/`` is then
unchanged. The limits are set in ``nbgrader_config.py``::

    c.Collect.max_file_mb = 25      # largest uncompressed member, MiB
    c.Collect.max_total_mb = 1024   # all members together, MiB
    c.Collect.max_members = 10000   # entries in the archive
"""
from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from traitlets import Integer, TraitError
from traitlets.config import Configurable

from .course import CourseError, db_url, ensure_assignment, load_config

MiB = 1024 * 1024
VALID_EXT = (".ipynb",)
#: names of archive members that are archives themselves (compared in lower case)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz", ".7z",
                    ".rar", ".zst", ".tzst", ".lz", ".lzma", ".z", ".cpio")
#: first bytes of archive and compressed formats: (offset, signature, what)
MAGIC = ((0, b"PK\x03\x04", "zip"), (0, b"PK\x05\x06", "zip"), (0, b"PK\x07\x08", "zip"),
         (0, b"\x1f\x8b", "gzip"), (0, b"BZh", "bzip2"), (0, b"\xfd7zXZ\x00", "xz"),
         (0, b"7z\xbc\xaf\x27\x1c", "7z"), (0, b"Rar!\x1a\x07", "rar"), (0, b"\x28\xb5\x2f\xfd", "zstd"),
         (0, b"\x1f\x9d", "compress"), (0, b"070707", "cpio"), (0, b"070701", "cpio"),
         (257, b"ustar", "tar"))
HEAD = 512
CHUNK = 1 << 16
TAR_HEADER_ALLOWANCE = 1536   # bytes a tar stream may spend on one member's headers and padding


class CollectError(CourseError):
    """The archive cannot be collected as it is; the message lists what to fix."""


class Collect(Configurable):
    """Limits on an LMS archive (``c.Collect.*`` in ``nbgrader_config.py``)."""

    max_file_mb = Integer(25, help="Largest uncompressed size of one member of the archive, MiB.").tag(config=True)
    max_total_mb = Integer(1024, help="Largest uncompressed size of all members together, MiB.").tag(config=True)
    max_members = Integer(10000, help="Most entries (files, folders, links) in the archive.").tag(config=True)


@dataclasses.dataclass
class Limits:
    """The limits in bytes and entries, checked positive."""

    max_file: int
    max_total: int
    max_members: int

    @classmethod
    def from_config(cls, config) -> "Limits":
        try:
            traits = Collect(config=config)
            values = {name: getattr(traits, name) for name in ("max_file_mb", "max_total_mb", "max_members")}
        except TraitError as exc:
            raise CollectError(f"nbgrader_config.py: bad c.Collect setting: {exc}") from exc
        for name, value in values.items():
            if value <= 0:
                raise CollectError(f"c.Collect.{name} must be a positive integer, got {value!r}")
        return cls(values["max_file_mb"] * MiB, values["max_total_mb"] * MiB, values["max_members"])


@dataclasses.dataclass
class Member:
    """One entry of the archive as :func:`scan` found it."""

    index: int                 # position in the archive (identifies duplicates of a name)
    name: str
    kind: str                  # "file", "dir" or "other"
    size: int = 0              # uncompressed size, bytes (declared, and checked for collected files)
    mode: int = 0o644          # permission bits recorded in the archive
    refused: str = ""          # why it is refused, or ""
    digest: str = ""           # sha256 of the data, for the files read during the scan


def show(name: str) -> str:
    """A member name on one line: control characters escaped."""
    return name if name.isprintable() else repr(name)[1:-1]


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB"


def _archive_format(path: Path) -> tuple[str, str]:
    """("zip", "") or ("tar", compression) from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip", ""
    for signature, compression in ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz")):
        if head.startswith(signature):
            return "tar", compression
    if head[257:262] == b"ustar":
        return "tar", ""
    raise CollectError(f"{path.name} is not a readable zip or tar(.gz) archive")


class _Budget:
    """A read-only stream that raises :class:`CollectError` once more than ``limit`` bytes are read."""

    def __init__(self, raw, limit: int, what: str):
        self.raw, self.limit, self.what, self.count = raw, limit, what, 0

    def read(self, n=-1):
        data = self.raw.read(self.limit - self.count + 1 if n is None or n < 0 else n)
        self.count += len(data)
        if self.count > self.limit:
            raise CollectError(self.what)
        return data


def _decompressed(compression: str, fh):
    if compression == "gz":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if compression == "bz2":
        return bz2.BZ2File(fh)
    if compression == "xz":
        return lzma.LZMAFile(fh)
    return fh


def _name_problem(name: str) -> str:
    """Why a member's path is unsafe, or ""."""
    if not name:
        return "an empty name"
    if "\x00" in name:
        return "a name with a NUL byte"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "an unsafe path (absolute)"
    if ".." in re.split(r"[/\\]", name):
        return "an unsafe path (it climbs out with '..')"
    return ""


def _archive_by_name(name: str) -> str:
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    return ""


def _archive_by_content(head: bytes) -> str:
    for offset, signature, what in MAGIC:
        if head[offset:offset + len(signature)] == signature:
            return what
    return ""


def _collectable(name: str, valid_ext) -> bool:
    """Whether a file of this name is collected (the others are left out, said so)."""
    return name.endswith(tuple(valid_ext)) and not name.startswith("__MACOSX/")


def _read_counted(fh, limit: int, out=None) -> tuple[int, str, bytes]:
    """Read ``fh`` to the end (into ``out`` if given): (bytes, sha256, first bytes); _TooLong past ``limit``."""
    digest, count, head = hashlib.sha256(), 0, b""
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            return count, digest.hexdigest(), head
        if len(head) < HEAD:
            head += chunk[:HEAD - len(head)]
        count += len(chunk)
        if count > limit:
            raise _TooLong(count)
        digest.update(chunk)
        if out is not None:
            out.write(chunk)


class _TooLong(Exception):
    pass


def _check_content(member: Member, fh, limits: Limits):
    """Read a member to be collected once: real size, checksum and first bytes."""
    limit = min(member.size, limits.max_file)
    try:
        count, member.digest, head = _read_counted(fh, limit)
    except _TooLong:
        member.refused = (f"holds more data than the {member.size} bytes its header declares, or more than "
                          f"c.Collect.max_file_mb = {limits.max_file // MiB} (a zip bomb?)")
        return
    what = _archive_by_content(head)
    if what:
        member.refused = (f"a nested archive ({what} data under the name {member.name.rsplit('/', 1)[-1]!r}); "
                          "archives inside the upload are never extracted")
    elif count != member.size:
        member.refused = f"holds {count} bytes, not the {member.size} its header declares"


def _check_entry(member: Member, limits: Limits, valid_ext):
    """Refusals that need only the entry's header."""
    member.refused = member.refused or _name_problem(member.name)
    if member.refused or member.kind != "file":
        return
    suffix = _archive_by_name(member.name)
    if suffix:
        member.refused = f"a nested archive ({suffix} by its name); archives inside the upload are never extracted"
    elif member.size > limits.max_file:
        member.refused = (f"{_mib(member.size)} uncompressed, more than c.Collect.max_file_mb = "
                          f"{limits.max_file // MiB}")


def _too_many(path, limits):
    return CollectError(f"{path.name} has more than c.Collect.max_members = {limits.max_members} entries: refused "
                        "before anything was extracted")


def _too_large(path, total, limits):
    return CollectError(f"{path.name} declares {_mib(total)} or more uncompressed, more than "
                        f"c.Collect.max_total_mb = {limits.max_total // MiB}: refused before anything was extracted "
                        "(a zip bomb? raise c.Collect.max_total_mb in nbgrader_config.py if the archive is honest)")


def _zip_kind(info: zipfile.ZipInfo) -> tuple[str, str, int]:
    """(kind, refusal, permission bits) of a zip entry; the Unix file type is in external_attr's high bits."""
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    if info.is_dir() or fmt == stat.S_IFDIR:
        return "dir", "", 0o755
    refused = {stat.S_IFLNK: "a symbolic link (links are never extracted)",
               stat.S_IFCHR: "a character device file (only plain files are extracted)",
               stat.S_IFBLK: "a block device file (only plain files are extracted)",
               stat.S_IFIFO: "a FIFO (only plain files are extracted)",
               stat.S_IFSOCK: "a socket (only plain files are extracted)"}.get(fmt, "")
    if fmt not in (0, stat.S_IFREG):
        refused = refused or f"an entry of unknown type {fmt:#o} (only plain files are extracted)"
    if info.flag_bits & 0x1:
        refused = refused or "encrypted (cannot be checked)"
    return ("other" if fmt not in (0, stat.S_IFREG) else "file"), refused, (stat.S_IMODE(mode) or 0o644)


def _scan_zip(path: Path, limits: Limits, valid_ext) -> list[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CollectError(f"{path.name} is not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise _too_many(path, limits)
        total = sum(info.file_size for info in infos)
        if total > limits.max_total:
            raise _too_large(path, total, limits)
        members = []
        for index, info in enumerate(infos):
            kind, refused, mode = _zip_kind(info)
            member = Member(index, info.filename, kind, info.file_size, mode, refused)
            _check_entry(member, limits, valid_ext)
            if not member.refused and kind == "file" and _collectable(member.name, valid_ext):
                try:
                    with archive.open(info) as fh:
                        _check_content(member, fh, limits)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
                    member.refused = (f"its data does not match the sizes or checksum its header declares "
                                      f"({exc}): a zip bomb or a damaged archive")
            members.append(member)
    return members


def _tar_kind(info: tarfile.TarInfo) -> tuple[str, str]:
    if info.isdir():
        return "dir", ""
    if info.issym():
        return "other", f"a symbolic link to {info.linkname!r} (links are never extracted)"
    if info.islnk():
        return "other", f"a hard link to {info.linkname!r} (links are never extracted)"
    if info.ischr():
        return "other", "a character device file (only plain files are extracted)"
    if info.isblk():
        return "other", "a block device file (only plain files are extracted)"
    if info.isfifo():
        return "other", "a FIFO (only plain files are extracted)"
    if info.issparse():
        return "other", "a sparse file (only plain files are extracted)"
    if info.isreg():
        return "file", ""
    return "other", f"a tar entry of unsupported type {info.type!r} (only plain files are extracted)"


TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _unreadable(path: Path, exc) -> CollectError:
    return CollectError(f"{path.name} is not a readable tar archive: {exc}")


def _tar_members(path: Path, compression: str, limits: Limits):
    """Open ``path`` as a tar stream whose decompressed length is bounded by the limits; yield (tar, info)."""
    budget = limits.max_total + TAR_HEADER_ALLOWANCE * (limits.max_members + 1) + 2 * tarfile.RECORDSIZE
    over = (f"{path.name}: its tar stream holds more than c.Collect.max_total_mb = {limits.max_total // MiB} "
            "(headers included) allows: refused (a tar bomb?)")
    with open(path, "rb") as raw:
        stream = _Budget(_decompressed(compression, raw), budget, over)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    yield tar, info
        except TAR_ERRORS as exc:
            raise _unreadable(path, exc) from exc


def _scan_tar(path: Path, compression: str, limits: Limits, valid_ext) -> list[Member]:
    members, total = [], 0
    for index, (tar, info) in enumerate(_tar_members(path, compression, limits)):
        if index >= limits.max_members:
            raise _too_many(path, limits)
        total += info.size
        if total > limits.max_total:
            raise _too_large(path, total, limits)
        kind, refused = _tar_kind(info)
        member = Member(index, info.name, kind, info.size, stat.S_IMODE(info.mode), refused)
        _check_entry(member, limits, valid_ext)
        if not member.refused and kind == "file" and _collectable(member.name, valid_ext):
            try:
                _check_content(member, tar.extractfile(info), limits)
            except TAR_ERRORS as exc:
                raise _unreadable(path, exc) from exc
        members.append(member)
    return members


def scan(path, limits: Limits, valid_ext=VALID_EXT) -> list[Member]:
    """Every entry of a zip or tar(.gz) archive, checked; nothing is written. CollectError for the whole archive."""
    path = Path(path)
    fmt, compression = _archive_format(path)
    if fmt == "zip":
        return _scan_zip(path, limits, valid_ext)
    return _scan_tar(path, compression, limits, valid_ext)


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not name.startswith(".") and name.isprintable() \
        and not re.search(r"[/\\\x00]", name) and len(name.encode()) <= 255


def _folder_student(part: str, students) -> str:
    """The student a folder of the archive is named after (``ada`` or ``ada_...``), or ""."""
    if part in students:
        return part
    head = part.split("_", 1)[0]
    return head if head in students else ""


def plan(members, pattern, known_students, *, allow_new=False, keep_latest=False,
         valid_ext=VALID_EXT, prefix="/course/downloaded/assignment/extracted/archive/"):
    """Map the scanned members to students; nothing is written.

    Returns ``(wanted, skipped, notes, problems)``: ``wanted`` is ``{student: {file_id: (Member,
    timestamp or None)}}``, ``skipped`` the names of files that are not collected, ``notes`` lines
    to log, ``problems`` one line per refused member (and per duplicate). nbgrader matches the
    pattern against an extracted file's absolute path: ``prefix`` stands for the folders above it.
    """
    from nbgrader.utils import parse_utc

    problems, skipped, notes, matched = [], [], [], []
    for member in members:
        name = member.name
        if member.refused:
            problems.append(f"{show(name)}: refused, {member.refused}")
            continue
        if member.kind != "file" or name.startswith("__MACOSX/"):   # folders; macOS resource forks
            continue
        if not _collectable(name, valid_ext):
            skipped.append(name)
            continue
        if member.mode & 0o7000:
            notes.append(f"  {show(name)}: mode {member.mode:#o} in the archive; written as 0644 (setuid, setgid "
                         "and exec bits are never kept)")
        match = re.match(pattern, prefix + name)
        info = match.groupdict() if match else {}
        if not info.get("student_id") or not info.get("file_id") or match.start("student_id") < len(prefix):
            problems.append(f"{show(name)}: the name does not match the pattern {pattern!r}")
            continue
        student, file_id, stamp = info["student_id"], info["file_id"], info.get("timestamp")
        if not _plain(student) or not _plain(file_id) or file_id == "timestamp.txt":
            problems.append(f"{show(name)}: refused, student {student!r} and file {file_id!r} must be "
                            "plain names (no '/', '\\', leading '.' or control characters)")
            continue
        if stamp:
            try:
                stamp = parse_utc(stamp)
            except (ValueError, OverflowError):
                problems.append(f"{show(name)}: timestamp {info['timestamp']!r} is not a date")
                continue
        if student not in known_students and not allow_new:
            problems.append(f"{show(name)}: unknown student {student!r} (not in the gradebook)")
            continue
        matched.append((member, student, file_id, stamp or None))
    students = set(known_students) | {student for _, student, _, _ in matched}
    result = {}
    for member, student, file_id, stamp in matched:
        folders = re.split(r"[/\\]", member.name)[:-1]
        owner = next((s for s in map(lambda p: _folder_student(p, students), folders) if s and s != student), "")
        if owner:
            problems.append(f"{show(member.name)}: refused, a file of student {student!r} inside a folder of "
                            f"student {owner!r} (each file goes only to the student its own name names)")
            continue
        entry = result.setdefault(student, {})
        if file_id not in entry:
            entry[file_id] = (member, stamp)
            continue
        kept, kept_stamp = entry[file_id]
        if not (keep_latest and stamp and kept_stamp):
            problems.append(f"duplicate submission of {file_id} by {student}: {show(kept.name)} and "
                            f"{show(member.name)}" + (" -- no timestamps to compare" if keep_latest else
                                                      " (pass --keep-latest to keep the newer one)"))
            continue
        if stamp >= kept_stamp:   # nbgrader's rule: the later of equal timestamps wins
            entry[file_id], member = (member, stamp), kept
        notes.append(f"  older duplicate of {file_id} by {student}, not collected: {show(member.name)}")
    folded = {}
    for student in sorted(result):
        other = folded.setdefault(student.casefold(), student)
        if other != student:
            problems.append(f"student ids {other!r} and {student!r} differ only in case: refused, their folders "
                            "would be one on some file systems")
    return result, skipped, notes, problems


def _refuse(archive_name, problems):
    hint = ""
    if any("unknown student" in p for p in problems):
        hint = ("\nimport the roster with `nbgrader db student import students.csv` (columns id, first_name, "
                "last_name, email) or pass --add-students")
    elif any(": refused, " in p for p in problems):
        hint = ("\nremove the refused members from the archive (or ask those students for their plain notebook) "
                "and collect again")
    raise CollectError(f"{len(problems)} problem(s) in {archive_name}; nothing was collected:\n  "
                       + "\n  ".join(problems) + hint)


def _extract(path: Path, wanted: dict, limits: Limits):
    """Write each wanted member (``{index: (Member, dest)}``) to its destination, plain and mode 0644."""
    fmt, compression = _archive_format(path)

    def write(member, dest, fh):
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            try:
                count, digest, _ = _read_counted(fh, min(member.size, limits.max_file), out)
            except _TooLong:
                count, digest = -1, ""
            os.fchmod(out.fileno(), 0o644)
        if count != member.size or digest != member.digest:
            raise CollectError(f"{path.name} changed while it was being collected ({show(member.name)}); "
                               "nothing was collected")

    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                for index, (member, dest) in wanted.items():
                    with archive.open(infos[index]) as fh:
                        write(member, dest, fh)
            return
        left = dict(wanted)
        for index, (tar, info) in enumerate(_tar_members(path, compression, limits)):
            if index in left:
                member, dest = left.pop(index)
                write(member, dest, tar.extractfile(info))
            if not left:
                return
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, *TAR_ERRORS) as exc:
        if isinstance(exc, CollectError):
            raise
        raise CollectError(f"could not extract {path.name}: {exc}; nothing was collected") from exc
    raise CollectError(f"{path.name} changed while it was being collected; nothing was collected")


def _rmtree(path: Path):
    def unlock(func, p, _):
        os.chmod(os.path.dirname(p), 0o700)
        func(p)
    shutil.rmtree(path, onerror=unlock)


def _check_target(course_dir: Path, students, assignment):
    """Refuse to write through a link or over a non-folder in ``submitted/``."""
    problems = []
    submitted = course_dir / "submitted"
    if submitted.is_symlink() or (submitted.exists() and not submitted.is_dir()):
        return [f"{submitted} is a symbolic link or not a folder: refusing to write through it"]
    for student in students:
        for target in (submitted / student, submitted / student / assignment):
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                problems.append(f"{target} is a symbolic link or not a folder: refusing to write through it")
                break
    return problems


def collect(course_dir, zip_path, assignment=None, *, allow_new=False, keep_latest=False, log=print):
    """Check the LMS archive ``zip_path`` (.zip or .tar.gz), then extract it into ``submitted/``.

    Returns the students collected; raises :class:`CollectError` (and changes nothing in
    ``submitted/``) when any member is refused.
    """
    from nbgrader.api import Gradebook

    course_dir, zip_path = Path(course_dir).resolve(), Path(zip_path).resolve()
    if not zip_path.is_file():
        raise CollectError(f"{zip_path} does not exist")
    known_assignments = sorted(p.name for p in (course_dir / "solutions").iterdir() if p.is_dir()) \
        if (course_dir / "solutions").is_dir() else []
    stem = re.sub(r"(\.tar)?\.[^.]*$", "", zip_path.name)
    if assignment is None:
        if stem not in known_assignments:
            raise CollectError(f"which assignment is {zip_path.name}? pass --assignment NAME "
                               f"(known: {', '.join(known_assignments) or 'none'})")
        assignment = stem
    if assignment not in known_assignments:
        raise CollectError(f"unknown assignment {assignment!r} (known: {', '.join(known_assignments) or 'none'})")
    config = load_config(course_dir)
    limits = Limits.from_config(config)
    pattern = _regexp(config)
    valid_ext = tuple((config.FileNameCollectorPlugin.get("valid_ext") if "FileNameCollectorPlugin" in config
                       else None) or VALID_EXT)
    url = db_url(course_dir, config)
    ensure_assignment(course_dir, assignment, url, log=log)
    with Gradebook(url) as gb:
        known = {s.id for s in gb.students}
    release = {p.name for p in (course_dir / "release" / assignment).glob("*.ipynb")}

    members = scan(zip_path, limits, valid_ext)
    wanted, skipped, notes, problems = plan(members, pattern, known, allow_new=allow_new,
                                            keep_latest=keep_latest, valid_ext=valid_ext,
                                            prefix=f"{course_dir}/downloaded/{assignment}/extracted/{stem}/")
    problems += _check_target(course_dir, sorted(wanted), assignment)
    if problems:
        _refuse(zip_path.name, problems)
    if not wanted:
        raise CollectError(f"{zip_path.name} holds no notebooks ({len(skipped)} other file(s))")
    for name in skipped:
        log(f"  not a notebook, not collected: {show(name)}")
    for line in notes:
        log(line)
    for student, files in sorted(wanted.items()):
        for file_id in files:
            if file_id not in release:
                log(f"  note: {student} submitted {file_id}, which is not a notebook of the assignment "
                    "(kept, graded as an extra notebook)")

    submitted = course_dir / "submitted"
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=course_dir))
    try:
        targets = {}
        for student, files in wanted.items():
            folder = staging / "new" / student
            folder.mkdir(parents=True)
            folder.chmod(0o755)
            for file_id, (member, _) in files.items():
                targets[member.index] = (member, folder / file_id)
            stamps = [stamp for _, stamp in files.values() if stamp is not None]
            if stamps:   # as nbgrader's zip_collect: the newest timestamp of the student's files
                (folder / "timestamp.txt").write_text(max(stamps).isoformat(" "))
                (folder / "timestamp.txt").chmod(0o644)
        _extract(zip_path, dict(sorted(targets.items())), limits)
        if allow_new:
            with Gradebook(url) as gb:
                for student in sorted(set(wanted) - known):
                    gb.update_or_create_student(student)
                    log(f"  added student {student} to the gradebook")
        replaced = [s for s in sorted(wanted) if (submitted / s / assignment).exists()]
        if replaced:
            log(f"  replacing earlier submissions of: {', '.join(replaced)}")
        _commit(staging, submitted, sorted(wanted), assignment)
    finally:
        _rmtree(staging)
    log(f"collected {sum(len(f) for f in wanted.values())} file(s) of {len(wanted)} student(s) into "
        f"{submitted}/<student>/{assignment}/")
    return sorted(wanted)


def _commit(staging: Path, submitted: Path, students, assignment):
    """Move each staged folder into ``submitted/<student>/<assignment>`` by rename; undo all on failure."""
    (staging / "old").mkdir()
    moved, created = [], []
    try:
        for folder in (submitted, *(submitted / s for s in students)):
            if not folder.is_dir():
                folder.mkdir(mode=0o755)
                created.append(folder)
        for student in students:
            target, new, old = submitted / student / assignment, staging / "new" / student, staging / "old" / student
            had_old = target.exists()
            if had_old:
                os.rename(target, old)
            moved.append((target, new, old, had_old))
            os.rename(new, target)
    except OSError as exc:
        for target, new, old, had_old in reversed(moved):
            if target.exists() and not new.exists():
                os.rename(target, new)
            if had_old:
                os.rename(old, target)
        for folder in reversed(created):
            folder.rmdir()
        raise CollectError(f"could not move the collected files into {submitted}: {exc}; nothing was "
                           "collected") from exc


def _regexp(config) -> str:
    pattern = (config.FileNameCollectorPlugin.get("named_regexp") if "FileNameCollectorPlugin" in config else "")
    if not pattern:
        raise CollectError("nbgrader_config.py sets no c.FileNameCollectorPlugin.named_regexp: collect cannot "
                           "tell whose file is whose")
    if "(?P<student_id>" not in pattern or "(?P<file_id>" not in pattern:
        raise CollectError(f"c.FileNameCollectorPlugin.named_regexp must have the groups student_id and file_id, "
                           f"got {pattern!r}")
    return pattern
