"""``collect``: an LMS archive into submitted/<student>/<assignment>/, extracted by nbjudge itself.

Hostile archives are built here with zipfile/tarfile: every refusal is checked for its exact
one-line reason and for leaving ``submitted/`` (and the course folder) exactly as it was. Fast:
no kernel and no nbgrader subprocess (the scratch gradebook is made once, then copied).
"""
from __future__ import annotations

import datetime
import io
import os
import random
import re
import shutil
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbjudge import collect as collect_mod
from nbjudge.collect import CollectError, collect
from nbjudge.course import CourseError, make_course_dir, quiet_nbgrader

ROOT = Path(__file__).resolve().parents[1]
NAME = "02_backprop"
MiB = 1024 * 1024


def notebook(text="x = 1") -> bytes:
    return nbformat.writes(new_notebook(cells=[new_code_cell(text, id="cell")])).encode()


# -- a scratch course: the repository's config, one assignment, students ada, ben, cy -----------
@pytest.fixture(scope="session")
def gradebook_template(tmp_path_factory):
    from nbgrader.api import Gradebook
    quiet_nbgrader()
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with Gradebook(f"sqlite:///{path}") as gb:
        for student in ("ada", "ben", "cy"):
            gb.update_or_create_student(student)
        gb.update_or_create_assignment(NAME)
        gb.update_or_create_notebook("assignment", NAME)
    return path


@pytest.fixture
def course(tmp_path, gradebook_template):
    """A course where cy was collected before (so that 'unchanged' means something)."""
    course = make_course_dir(ROOT, tmp_path / "course", [NAME])
    shutil.copy(gradebook_template, course / "gradebook.db")
    # collect only needs the release's notebook names; the solution stands in for the generated release
    (course / "release" / NAME).mkdir(parents=True)
    shutil.copy(course / "solutions" / NAME / "assignment.ipynb", course / "release" / NAME / "assignment.ipynb")
    earlier = course / "submitted" / "cy" / NAME
    earlier.mkdir(parents=True)
    (earlier / "assignment.ipynb").write_bytes(notebook("cy = 'earlier'"))
    (earlier / "timestamp.txt").write_text("2026-02-01 08:00:00")
    return course


def configure(course, **settings):
    with open(course / "nbgrader_config.py", "a") as fh:
        for key, value in settings.items():
            fh.write(f"\nc.Collect.{key} = {value!r}\n")


def snapshot(course) -> dict:
    """Every path under the course folder but the gradebook, with its mode and content."""
    found = {}
    for path in sorted(Path(course).rglob("*")):
        rel = str(path.relative_to(course))
        if rel.startswith("gradebook.db"):
            continue
        info = os.lstat(path)
        body = os.readlink(path) if path.is_symlink() else (path.read_bytes() if path.is_file() else None)
        found[rel] = (info.st_mode, body)
    return found


def make_zip(path, entries) -> Path:
    """``entries``: (name, bytes) pairs or (ZipInfo, bytes) pairs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return path


def zinfo(name, mode):
    info = zipfile.ZipInfo(name, date_time=(2026, 3, 1, 12, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def make_tar(path, entries, fmt=tarfile.GNU_FORMAT) -> Path:
    """``entries``: (name, bytes) pairs or (TarInfo, bytes-or-None) pairs; written as .tar.gz."""
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for item, data in entries:
            info = item if isinstance(item, tarfile.TarInfo) else tarfile.TarInfo(item)
            if data is not None:
                info.size = len(data)
            if not isinstance(item, tarfile.TarInfo):
                info.mode = 0o644
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tinfo(name, kind=tarfile.REGTYPE, *, mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, linkname
    return info


def tar_gz_bytes(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def refused(course, archive, line, **kwargs):
    """Collect must raise with ``line`` as one whole line, and leave the course folder as it was."""
    before = snapshot(course)
    pattern = line if isinstance(line, re.Pattern) else re.compile(rf"(?m)^  {re.escape(line)}$")
    with pytest.raises(CollectError, match=pattern) as caught:
        collect(course, archive, NAME, log=lambda *a: None, **kwargs)
    assert snapshot(course) == before, "a refused archive must change nothing"
    return str(caught.value)


HONEST = notebook("ada = 'honest'")


# -- honest archives ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tgz"])
def test_an_honest_archive_collects_each_student_with_timestamps(course, tmp_path, suffix):
    entries = [("ada_20260301T120000_assignment.ipynb", notebook("ada = 1")),
               ("submissions/ben_assignment.ipynb", notebook("ben = 2")),
               ("readme.txt", b"from the LMS"),
               ("__MACOSX/._ada_20260301T120000_assignment.ipynb", b"\x00\x05\x16\x07")]
    archive = tmp_path / f"{NAME}{suffix}"
    (make_zip if suffix == ".zip" else make_tar)(archive, entries)
    log = []
    assert collect(course, archive, log=log.append) == ["ada", "ben"]   # assignment from the archive's name
    ada, ben = course / "submitted" / "ada" / NAME, course / "submitted" / "ben" / NAME
    assert (ada / "assignment.ipynb").read_bytes() == notebook("ada = 1")
    assert (ben / "assignment.ipynb").read_bytes() == notebook("ben = 2")
    from nbgrader.utils import parse_utc
    assert (ada / "timestamp.txt").read_text() == "2026-03-01 12:00:00"
    assert parse_utc((ada / "timestamp.txt").read_text()) == datetime.datetime(2026, 3, 1, 12, 0, 0)
    assert not (ben / "timestamp.txt").exists(), "no timestamp in the name: none invented"
    assert sorted(p.name for p in ada.iterdir()) == ["assignment.ipynb", "timestamp.txt"]
    for path in (ada / "assignment.ipynb", ada / "timestamp.txt", ben / "assignment.ipynb"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert (course / "submitted" / "cy" / NAME / "assignment.ipynb").read_bytes() == notebook("cy = 'earlier'")
    assert "  not a notebook, not collected: readme.txt" in log
    assert not any("__MACOSX" in line for line in log), "macOS resource forks are left out silently"
    assert log[-1].startswith("collected 2 file(s) of 2 student(s)")
    assert not list(course.glob(".collect-*")), "the staging folder is removed"
    assert not (course / "downloaded").exists(), "nothing is extracted outside submitted/"


def test_the_newest_timestamp_of_a_students_files_goes_to_timestamp_txt(course, tmp_path):
    archive = make_zip(tmp_path / "hw.zip", [("ada_20260301T120000_assignment.ipynb", HONEST),
                                             ("ada_20260302T090000Z_extra.ipynb", HONEST)])
    log = []
    collect(course, archive, NAME, log=log.append)
    assert (course / "submitted" / "ada" / NAME / "timestamp.txt").read_text() == "2026-03-02 09:00:00"
    assert any("ada submitted extra.ipynb, which is not a notebook of the assignment" in line for line in log)


def test_collecting_again_replaces_only_that_students_folder(course, tmp_path):
    ben = course / "submitted" / "ben" / NAME
    ben.mkdir(parents=True)
    (ben / "assignment.ipynb").write_bytes(notebook("ben = 'untouched'"))
    archive = make_zip(tmp_path / "hw.zip", [("cy_assignment.ipynb", notebook("cy = 'again'"))])
    log = []
    collect(course, archive, NAME, log=log.append)
    cy = course / "submitted" / "cy" / NAME
    assert (cy / "assignment.ipynb").read_bytes() == notebook("cy = 'again'")
    assert not (cy / "timestamp.txt").exists(), "the earlier folder is replaced as a whole, as nbgrader does"
    assert (ben / "assignment.ipynb").read_bytes() == notebook("ben = 'untouched'")
    assert "  replacing earlier submissions of: cy" in log


@pytest.mark.parametrize("make, mode", [
    (lambda p: make_zip(p, [(zinfo("ada_assignment.ipynb", stat.S_IFREG | 0o4777), HONEST)]), 0o4777),
    (lambda p: make_tar(p, [(tinfo("ada_assignment.ipynb", mode=0o6755), HONEST)]), 0o6755),
], ids=["zip", "tar.gz"])
def test_setuid_and_exec_bits_are_never_written(course, tmp_path, make, mode):
    log = []
    collect(course, make(tmp_path / "hw.zip"), NAME, log=log.append)
    written = course / "submitted" / "ada" / NAME / "assignment.ipynb"
    assert written.read_bytes() == HONEST
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert (f"  ada_assignment.ipynb: mode {mode:#o} in the archive; written as 0644 (setuid, setgid and exec "
            "bits are never kept)") in log


def test_an_executable_notebook_is_written_0644_without_a_note(course, tmp_path):
    archive = make_zip(tmp_path / "hw.zip", [(zinfo("ada_assignment.ipynb", stat.S_IFREG | 0o755), HONEST)])
    log = []
    collect(course, archive, NAME, log=log.append)
    assert stat.S_IMODE((course / "submitted" / "ada" / NAME / "assignment.ipynb").stat().st_mode) == 0o644
    assert not any("mode" in line for line in log)


# -- nested archives ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tgz", ".tar", ".gz", ".bz2", ".xz", ".7z", ".rar"])
def test_a_nested_archive_is_refused_by_its_name(course, tmp_path, suffix):
    inner = zip_bytes([("ada_20991231T235959_assignment.ipynb", notebook("ada = 'forged'"))])
    member = f"ben_20260301T120000_assignment{suffix}"
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST), (member, inner)])
    refused(course, archive, f"{member}: refused, a nested archive ({suffix} by its name); archives inside the "
                             "upload are never extracted")


@pytest.mark.parametrize("outer", ["zip", "tar.gz"])
@pytest.mark.parametrize("inner, what", [
    (lambda: tar_gz_bytes([("ada_20991231T235959_assignment.ipynb", notebook("ada = 'forged'"))]), "gzip"),
    (lambda: zip_bytes([("ada_20991231T235959_assignment.ipynb", notebook("ada = 'forged'"))]), "zip"),
    (lambda: b"BZh91AY&SY" + bytes(40), "bzip2"),
])
def test_a_nested_archive_renamed_to_ipynb_is_refused_by_its_bytes(course, tmp_path, outer, inner, what):
    entries = [("ada_assignment.ipynb", HONEST), ("ben_assignment.ipynb", inner())]
    archive = (make_zip if outer == "zip" else make_tar)(tmp_path / f"hw.{outer}", entries)
    refused(course, archive, f"ben_assignment.ipynb: refused, a nested archive ({what} data under the name "
                             "'ben_assignment.ipynb'); archives inside the upload are never extracted")


def test_a_plain_tar_renamed_to_ipynb_is_refused_by_its_bytes(course, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("ada_assignment.ipynb")
        info.size = len(HONEST)
        tar.addfile(info, io.BytesIO(HONEST))
    archive = make_zip(tmp_path / "hw.zip", [("ben_assignment.ipynb", buf.getvalue())])
    refused(course, archive, "ben_assignment.ipynb: refused, a nested archive (tar data under the name "
                             "'ben_assignment.ipynb'); archives inside the upload are never extracted")


# -- links, special files, paths ----------------------------------------------------------------
@pytest.mark.parametrize("mode, what", [
    (stat.S_IFLNK | 0o777, "a symbolic link (links are never extracted)"),
    (stat.S_IFCHR | 0o666, "a character device file (only plain files are extracted)"),
    (stat.S_IFIFO | 0o644, "a FIFO (only plain files are extracted)"),
    (stat.S_IFSOCK | 0o644, "a socket (only plain files are extracted)"),
])
def test_zip_links_and_special_files_are_refused(course, tmp_path, mode, what):
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST),
                                             (zinfo("ben_assignment.ipynb", mode), b"../../solutions/x.ipynb")])
    refused(course, archive, f"ben_assignment.ipynb: refused, {what}")


def test_an_encrypted_zip_member_is_refused(course, tmp_path):
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST), ("ben_assignment.ipynb", HONEST)])
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):   # the general-purpose flags, bit 0
        at = data.rindex(signature)
        data[at + offset] |= 0x1
    archive.write_bytes(bytes(data))
    refused(course, archive, "ben_assignment.ipynb: refused, encrypted (cannot be checked)")


def test_a_truncated_tar_gz_is_refused(course, tmp_path):
    archive = make_tar(tmp_path / "hw.tar.gz", [("ada_assignment.ipynb", HONEST),
                                                ("ben_assignment.ipynb", random.Random(0).randbytes(200_000))])
    archive.write_bytes(archive.read_bytes()[:150_000])
    refused(course, archive, re.compile(r"^hw\.tar\.gz is not a readable tar archive: "))


@pytest.mark.parametrize("entry, what", [
    (tinfo("ben_assignment.ipynb", tarfile.SYMTYPE, linkname="/etc/passwd"),
     "a symbolic link to '/etc/passwd' (links are never extracted)"),
    (tinfo("ben_assignment.ipynb", tarfile.LNKTYPE, linkname="ada_assignment.ipynb"),
     "a hard link to 'ada_assignment.ipynb' (links are never extracted)"),
    (tinfo("ben_assignment.ipynb", tarfile.CHRTYPE), "a character device file (only plain files are extracted)"),
    (tinfo("ben_assignment.ipynb", tarfile.BLKTYPE), "a block device file (only plain files are extracted)"),
    (tinfo("ben_assignment.ipynb", tarfile.FIFOTYPE), "a FIFO (only plain files are extracted)"),
])
def test_tar_links_and_special_files_are_refused(course, tmp_path, entry, what):
    archive = make_tar(tmp_path / "hw.tar.gz", [("ada_assignment.ipynb", HONEST), (entry, None)])
    refused(course, archive, f"ben_assignment.ipynb: refused, {what}")


@pytest.mark.parametrize("make", [make_zip, make_tar])
@pytest.mark.parametrize("name, why", [
    ("/tmp/ben_assignment.ipynb", "an unsafe path (absolute)"),
    ("../ben_assignment.ipynb", "an unsafe path (it climbs out with '..')"),
    ("x/../../ben_assignment.ipynb", "an unsafe path (it climbs out with '..')"),
    ("..\\ben_assignment.ipynb", "an unsafe path (it climbs out with '..')"),
    ("C:\\ben_assignment.ipynb", "an unsafe path (absolute)"),
])
def test_absolute_and_climbing_paths_are_refused(course, tmp_path, make, name, why):
    archive = make(tmp_path / "hw.archive", [("ada_assignment.ipynb", HONEST), (name, HONEST)])
    refused(course, archive, f"{name}: refused, {why}")


def test_each_refused_member_gets_exactly_one_line(course, tmp_path):
    archive = make_tar(tmp_path / "hw.tar.gz", [
        ("ada_assignment.ipynb", HONEST),
        (tinfo("../../ben_assignment.ipynb", tarfile.SYMTYPE, linkname="/etc/shadow"), None),
        (tinfo("dev", tarfile.CHRTYPE), None),
        ("cy_assignment.zip", zip_bytes([("ada_assignment.ipynb", HONEST)])),
        ("/abs_assignment.ipynb", HONEST),
        ("ben_assign\nment.ipynb", HONEST),
    ])
    message = refused(course, archive, re.compile("5 problem"))
    lines = message.splitlines()
    assert lines[0] == "5 problem(s) in hw.tar.gz; nothing was collected:"
    assert lines[1:6] == [
        "  ../../ben_assignment.ipynb: refused, a symbolic link to '/etc/shadow' (links are never extracted)",
        "  dev: refused, a character device file (only plain files are extracted)",
        "  cy_assignment.zip: refused, a nested archive (.zip by its name); archives inside the upload are never "
        "extracted",
        "  /abs_assignment.ipynb: refused, an unsafe path (absolute)",
        "  ben_assign\\nment.ipynb: refused, student 'ben' and file 'assign\\nment.ipynb' must be plain names "
        "(no '/', '\\', leading '.' or control characters)",
    ]
    assert lines[6].startswith("remove the refused members from the archive")


# -- sizes: zip and tar bombs -------------------------------------------------------------------
def _patch_zip_sizes(path, declared):
    """Make every header of a one-member zip declare ``declared`` uncompressed bytes (a lying header)."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, declared)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))


@pytest.fixture
def opened(monkeypatch):
    """The names of zip members that were decompressed."""
    names, real_open = [], zipfile.ZipFile.open

    def spy(self, name, mode="r", *args, **kwargs):
        if mode == "r":
            names.append(getattr(name, "filename", name))
        return real_open(self, name, mode, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return names


def test_a_zip_bomb_declared_small_is_refused_while_counting(course, tmp_path):
    configure(course, max_file_mb=1)
    archive = make_zip(tmp_path / "hw.zip", [("ben_assignment.ipynb", b"{" + bytes(3 * MiB))])
    _patch_zip_sizes(archive, 1000)
    assert zipfile.ZipFile(archive).infolist()[0].file_size == 1000
    refused(course, archive, re.compile(r"(?m)^  ben_assignment\.ipynb: refused, its data does not match the sizes "
                                        r"or checksum its header declares \(.*\): a zip bomb or a damaged archive$"))


def test_a_zip_member_declared_too_large_is_refused_before_it_is_decompressed(course, tmp_path, opened):
    configure(course, max_file_mb=1)
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST),
                                             ("ben_assignment.ipynb", b"{" + bytes(2 * MiB))])
    refused(course, archive, "ben_assignment.ipynb: refused, 2.0 MiB uncompressed, more than "
                             "c.Collect.max_file_mb = 1")
    assert "ben_assignment.ipynb" not in opened


def test_a_zip_over_the_total_is_refused_before_anything_is_decompressed(course, tmp_path, opened):
    configure(course, max_total_mb=1)
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", b"{" + bytes(MiB // 2)),
                                             ("ben_assignment.ipynb", b"{" + bytes(MiB // 2)),
                                             ("cy_assignment.ipynb", HONEST)])
    refused(course, archive, re.compile(r"^hw\.zip declares 1\.0 MiB or more uncompressed, more than "
                                        r"c\.Collect\.max_total_mb = 1: refused before anything was extracted"))
    assert opened == []


def test_a_tar_member_declared_too_large_is_refused(course, tmp_path):
    configure(course, max_file_mb=1)
    archive = make_tar(tmp_path / "hw.tar.gz", [("ada_assignment.ipynb", HONEST),
                                                ("ben_assignment.ipynb", b"{" + bytes(2 * MiB))])
    refused(course, archive, "ben_assignment.ipynb: refused, 2.0 MiB uncompressed, more than "
                             "c.Collect.max_file_mb = 1")


def test_a_tar_over_the_total_is_refused(course, tmp_path):
    configure(course, max_total_mb=1)
    archive = make_tar(tmp_path / "hw.tar.gz", [("ada_assignment.ipynb", b"{" + bytes(MiB // 2)),
                                                ("ben_assignment.ipynb", b"{" + bytes(MiB // 2 + 10))])
    refused(course, archive, re.compile(r"^hw\.tar\.gz declares 1\.0 MiB or more uncompressed, more than "
                                        r"c\.Collect\.max_total_mb = 1: refused before anything was extracted"))


def test_a_huge_tar_header_is_refused_without_reading_it_all(course, tmp_path):
    configure(course, max_total_mb=1, max_members=10)
    info = tinfo("ada_assignment.ipynb")
    info.pax_headers = {"comment": "x" * (3 * MiB)}
    archive = make_tar(tmp_path / "hw.tar.gz", [(info, HONEST)], fmt=tarfile.PAX_FORMAT)
    refused(course, archive, re.compile(r"^hw\.tar\.gz: its tar stream holds more than c\.Collect\.max_total_mb = 1 "
                                        r"\(headers included\) allows: refused \(a tar bomb\?\)"))


def test_an_archive_with_too_many_members_is_refused(course, tmp_path):
    configure(course, max_members=10)
    archive = make_zip(tmp_path / "hw.zip", [(f"file{i}.txt", b"") for i in range(11)])
    refused(course, archive, re.compile(r"^hw\.zip has more than c\.Collect\.max_members = 10 entries: refused "
                                        r"before anything was extracted"))


@pytest.mark.parametrize("setting, message", [
    ({"max_file_mb": 0}, r"c\.Collect\.max_file_mb must be a positive integer, got 0"),
    ({"max_total_mb": "lots"}, r"nbgrader_config\.py: bad c\.Collect setting: .*max_total_mb"),
])
def test_bad_limits_are_refused(course, tmp_path, setting, message):
    configure(course, **setting)
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST)])
    refused(course, archive, re.compile(message))


# -- whose file is whose ------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["ada", "ada_20260301T120000_assignment", "x/ada"])
def test_a_file_naming_another_student_inside_a_students_folder_is_refused(course, tmp_path, folder):
    archive = make_zip(tmp_path / "hw.zip", [(f"{folder}/ada_assignment.ipynb", HONEST),
                                             (f"{folder}/ben_assignment.ipynb", notebook("ben = 'by ada?'"))])
    refused(course, archive, f"{folder}/ben_assignment.ipynb: refused, a file of student 'ben' inside a folder of "
                             "student 'ada' (each file goes only to the student its own name names)")


def test_duplicates_are_refused_unless_keep_latest_has_timestamps(course, tmp_path):
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST), ("x/ada_assignment.ipynb", HONEST)])
    refused(course, archive, "duplicate submission of assignment.ipynb by ada: ada_assignment.ipynb and "
                             "x/ada_assignment.ipynb (pass --keep-latest to keep the newer one)")
    refused(course, archive, "duplicate submission of assignment.ipynb by ada: ada_assignment.ipynb and "
                             "x/ada_assignment.ipynb -- no timestamps to compare", keep_latest=True)
    stamped = make_zip(tmp_path / "stamped.zip", [("ada_20260302T120000_assignment.ipynb", notebook("middle")),
                                                  ("ada_20260301T120000_assignment.ipynb", notebook("oldest")),
                                                  ("ada_20260303T120000_assignment.ipynb", notebook("newest"))])
    log = []
    collect(course, stamped, NAME, keep_latest=True, log=log.append)
    ada = course / "submitted" / "ada" / NAME
    assert (ada / "assignment.ipynb").read_bytes() == notebook("newest")
    assert (ada / "timestamp.txt").read_text() == "2026-03-03 12:00:00"
    older = [line for line in log if "older duplicate" in line]
    assert older == [f"  older duplicate of assignment.ipynb by ada, not collected: ada_{day}T120000_assignment.ipynb"
                     for day in ("20260301", "20260302")]


def test_an_unknown_student_is_refused_unless_added(course, tmp_path):
    from nbgrader.api import Gradebook
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST), ("mallory_assignment.ipynb", HONEST)])
    message = refused(course, archive, "mallory_assignment.ipynb: unknown student 'mallory' (not in the gradebook)")
    assert "nbgrader db student import students.csv" in message
    log = []
    assert collect(course, archive, NAME, allow_new=True, log=log.append) == ["ada", "mallory"]
    assert "  added student mallory to the gradebook" in log
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert "mallory" in {s.id for s in gb.students}


@pytest.mark.parametrize("name, line", [
    ("Final Version.ipynb", "Final Version.ipynb: the name does not match the pattern"),
    ("ada_20261399T120000_assignment.ipynb",
     "ada_20261399T120000_assignment.ipynb: timestamp '20261399T120000' is not a date"),
])
def test_unmatched_names_and_bad_timestamps_are_refused(course, tmp_path, name, line):
    archive = make_zip(tmp_path / "hw.zip", [("ben_assignment.ipynb", HONEST), (name, HONEST)])
    refused(course, archive, re.compile(rf"(?m)^  {re.escape(line)}"))


def test_a_file_that_is_no_archive_is_refused(course, tmp_path):
    bad = tmp_path / "hw.zip"
    bad.write_text("not an archive")
    refused(course, bad, re.compile(r"^hw\.zip is not a readable zip or tar\(\.gz\) archive$"))
    assert issubclass(CollectError, CourseError)


def test_a_symlink_in_submitted_is_never_written_through(course, tmp_path):
    (course / "submitted" / "ada").symlink_to(course / "submitted" / "cy")
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST)])
    refused(course, archive, f"{course / 'submitted' / 'ada'} is a symbolic link or not a folder: refusing to "
                             "write through it")


# -- writing: all or nothing --------------------------------------------------------------------
def test_an_archive_that_changes_after_the_scan_changes_nothing(course, tmp_path, monkeypatch):
    real_scan = collect_mod.scan

    def tampered(*args, **kwargs):
        members = real_scan(*args, **kwargs)
        members[-1].digest = "0" * 64   # as if the file's bytes were swapped after they were checked
        return members
    monkeypatch.setattr(collect_mod, "scan", tampered)
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST), ("cy_assignment.ipynb", HONEST)])
    before = snapshot(course)
    with pytest.raises(CollectError, match=r"^hw\.zip changed while it was being collected \(cy_assignment\.ipynb\)"):
        collect(course, archive, NAME, log=lambda *a: None)
    assert snapshot(course) == before


def test_a_failed_move_puts_every_folder_back(course, tmp_path, monkeypatch):
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == course / "submitted" / "cy" / NAME and ".collect-" in str(src) and "new" in str(src):
            raise OSError("disk full")
        return real_rename(src, dst)
    monkeypatch.setattr(os, "rename", rename)
    archive = make_zip(tmp_path / "hw.zip", [("ada_assignment.ipynb", HONEST),
                                             ("cy_assignment.ipynb", notebook("cy = 'new'"))])
    before = snapshot(course)
    with pytest.raises(CollectError, match=r"could not move the collected files into .*disk full; nothing was "
                                           r"collected"):
        collect(course, archive, NAME, log=lambda *a: None)
    assert snapshot(course) == before, "every folder is back, and no new one remains"
