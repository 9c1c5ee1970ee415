"""One cgroup per grading sandbox (nbjudge.cgroups): limits that hold for all of a sandbox's processes.

The real tests create cgroups on this machine (they need root and a writable cgroupfs, v1 or v2)
and are skipped with detect()'s reason elsewhere. Each starts its processes through
``Box.wrap`` and checks the limit from outside: by exit statuses, ``/proc`` and ``stats()``.
The fallback tests give detect() fake cgroup roots, and run it as an unprivileged user.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbjudge import cgroups
from nbjudge.cgroups import Box, CgroupError, CgroupsUnavailable, Run, Support, detect

SUPPORT = detect()
needs_cgroups = pytest.mark.skipif(not SUPPORT.available, reason=f"no cgroup can be created here: {SUPPORT.reason}")
GiB = 1 << 30
MiB = 1 << 20


PR_SET_CHILD_SUBREAPER = 36


def _reap() -> None:
    """Reap every exited child (orphans included, see :func:`reaper`)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


@pytest.fixture(autouse=True)
def reaper():
    """Orphans of a test's processes come back to this process, which reaps them.

    Killing a box leaves orphans (a fork bomb's children, a crashed grader's kernel); their
    zombies go to the nearest subreaper or to pid 1, which on some machines never reaps them,
    and a zombie still counts in ``pids.current``.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        _reap()


@pytest.fixture
def run():
    r = Run.open(SUPPORT, label="pytest")
    try:
        yield r
    finally:
        r.close()
    assert not [f for f in r.folders if f.exists()], "Run.close() left folders behind"


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


# -- limits that hold for all processes together (real cgroups) -------------------------------------
HOG = r"""
import json, os, sys, time
n, size = int(sys.argv[1]), int(sys.argv[2])
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        block = b"x" * size      # writes every page: really resident
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
result = []
for pid in kids:
    _, status = os.waitpid(pid, 0)
    result.append(os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0)
print(json.dumps(result))
"""


@needs_cgroups
@pytest.mark.slow
def test_memory_limit_holds_for_all_processes_together(run):
    # 8 x 400 MB: each child is far below any per-process limit, the box's 1 GiB holds at most two
    sentinel = subprocess.Popen(["sleep", "60"])  # outside the box: must not be touched
    try:
        with Box.create("hog", run=run, memory_bytes=GiB, pids_max=64) as box:
            proc = subprocess.run(box.wrap([sys.executable, "-c", HOG, "8", str(400 * 10**6)]),
                                  capture_output=True, text=True, timeout=120)
            stats = box.stats()
        assert proc.returncode == 0, proc.stderr
        signals = json.loads(proc.stdout)
        killed = signals.count(signal.SIGKILL)
        assert killed >= 6, f"at most 2 of 8 children fit in 1 GiB, but {8 - killed} survived: {signals}"
        assert stats.oom_kills == killed, stats
        assert 700 * MiB < stats.memory_peak_bytes <= GiB, stats
        assert sentinel.poll() is None, "a process outside the box was killed"
    finally:
        sentinel.kill()
        sentinel.wait()


BOMB = r"""
import os, time
def grow(level):                         # a binary tree of processes: at most 2**9 - 1 = 511
    for _ in range(2):
        if level == 8:
            return
        try:
            pid = os.fork()
        except OSError:                  # EAGAIN at pids.max
            return
        if pid == 0:
            grow(level + 1)
            time.sleep(30)
            os._exit(0)
grow(0)
time.sleep(30)
"""


@needs_cgroups
def test_fork_bomb_stops_at_pids_max(run):
    box = Box.create("bomb", run=run, memory_bytes=GiB, pids_max=40)
    proc = subprocess.Popen(box.wrap([sys.executable, "-c", BOMB]))
    try:
        seen = []

        def settled():
            seen.append(box.stats().pids_current)
            return box.stats().pids_refused and len(seen) > 10 and len(set(seen[-10:])) == 1
        _wait_for(settled, timeout=15, what=f"the fork bomb to stop (pids: {seen[-3:]})")
        stats = box.stats()
        assert stats.pids_current == 40, stats
        assert len(box.pids()) == 40
        assert stats.pids_refused >= 1, stats
        box.kill_all()
        assert box.pids() == set()
        proc.wait(timeout=10)
        _wait_for(lambda: _reap() or box.stats().pids_current == 0, what="the killed processes to be reaped")
    finally:
        box.remove()
        proc.wait(timeout=10)


SPIN = r"""
import os, sys, time
cpu, children = int(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, {cpu})
end = time.monotonic() + 60              # never outlive a broken test
for _ in range(children):
    if os.fork() == 0:
        os.setsid()                      # its own session, as a hostile submission does
        while time.monotonic() < end:
            pass
        os._exit(0)
if children:
    os.wait()
else:
    while time.monotonic() < end:
        pass
"""


@needs_cgroups
@pytest.mark.slow
def test_a_box_with_many_spinners_gets_no_more_cpu_than_a_box_with_one(run):
    cpu = min(os.sched_getaffinity(0))  # everything on one CPU: the result does not depend on core count
    a = Box.create("one", run=run, memory_bytes=GiB, pids_max=32)
    b = Box.create("eight", run=run, memory_bytes=GiB, pids_max=32)
    procs = [subprocess.Popen(a.wrap([sys.executable, "-c", SPIN, str(cpu), "0"])),
             subprocess.Popen(b.wrap([sys.executable, "-c", SPIN, str(cpu), "8"]))]
    try:
        _wait_for(lambda: len(b.pids()) == 9, what="box B's 8 spinners")
        time.sleep(0.5)
        b_spinners = b.pids() - {procs[1].pid}
        t0 = (_cpu_ticks(procs[0].pid), sum(map(_cpu_ticks, b_spinners)), a.stats().cpu_ns, b.stats().cpu_ns)
        time.sleep(3)
        t1 = (_cpu_ticks(procs[0].pid), sum(map(_cpu_ticks, b_spinners)), a.stats().cpu_ns, b.stats().cpu_ns)
        da, db, dna, dnb = (y - x for x, y in zip(t0, t1))
        assert db > 0, "box B did not run"
        share = da / (da + db)
        # equal weights: ~50 %; without cgroups the one process would get 1/9 (~11 %) of the CPU
        assert 0.35 <= share <= 0.65, f"box A got {share:.0%} of the CPU (ticks A {da}, B {db})"
        assert dna / (dna + dnb) == pytest.approx(share, abs=0.1), "stats().cpu_ns disagrees with /proc"
    finally:
        for box in (a, b):
            box.remove()
        for proc in procs:
            proc.wait(timeout=10)


# -- joining, killing and removing (real cgroups) ---------------------------------------------------
@needs_cgroups
def test_wrapped_command_runs_in_the_box_from_its_first_instruction(run):
    with Box.create("member", run=run, memory_bytes=GiB, pids_max=8) as box:
        out = subprocess.run(box.wrap(["cat", "/proc/self/cgroup"]), capture_output=True, text=True,
                             check=True).stdout
    member = cgroups._own_paths(out)
    suffix = f"/{cgroups.PARENT}/{run.name}/member"
    for h in SUPPORT.hierarchies:
        for controller in h.controllers if SUPPORT.version == 1 else ("",):
            assert member[controller].endswith(suffix), (controller, member[controller])


TREE = r"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:                   # orphaned below: no longer a child of the box's first process
        time.sleep(60)
        os._exit(0)
    os._exit(0)
os.wait()
print(os.getpid(), flush=True)
time.sleep(60)
"""


@needs_cgroups
def test_remove_kills_every_process_and_leaves_no_folder(run):
    box = Box.create("tree", run=run, memory_bytes=GiB, pids_max=16)
    proc = subprocess.Popen(box.wrap([sys.executable, "-c", TREE]), stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        pids = box.pids()
        assert proc.pid in pids and len(pids) == 2, pids  # the first process and the orphaned grandchild
        box.remove()  # before the caller reaps its child: a zombie must not block rmdir
        assert all(_gone(pid) for pid in pids), [p for p in pids if not _gone(p)]
        assert not [f for f in box.folders if f.exists()], box.folders
        box.remove()  # idempotent
        again = subprocess.run(box.wrap(["echo", "ran"]), capture_output=True, text=True)
        assert again.returncode == 125 and again.stdout == "", "a removed box must refuse to start anything"
        assert "cannot join the cgroup" in again.stderr
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@needs_cgroups
def test_run_close_removes_boxes_it_did_not_remove_itself():
    r = Run.open(SUPPORT, label="pytest")
    box = Box.create("left", run=r, memory_bytes=GiB, pids_max=8)
    proc = subprocess.Popen(box.wrap(["sleep", "60"]))
    _wait_for(lambda: box.pids() == {proc.pid}, what="sleep in the box")
    r.close()
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not [f for f in (*box.folders, *r.folders) if f.exists()]
    r.close()  # idempotent


@needs_cgroups
def test_failed_create_leaves_no_folder(run, monkeypatch):
    real_set = cgroups._set

    def refuse_pids(path, value):
        if path.name == "pids.max":
            raise CgroupError(f"cannot write {value!r} to {path}: refused by the test")
        real_set(path, value)
    monkeypatch.setattr(cgroups, "_set", refuse_pids)
    with pytest.raises(CgroupError, match="pids.max: refused by the test"):
        Box.create("half", run=run, memory_bytes=GiB, pids_max=8)
    assert not [f / "half" for f in run.folders if (f / "half").exists()]


@needs_cgroups
@pytest.mark.parametrize("kwargs, message", [
    ({"name": "../escape"}, r"box name must be .* got '\.\./escape'"),
    ({"name": "a/b"}, r"got 'a/b'"),
    ({"name": "x" * 65}, r"got 'x{65}'"),
    ({"memory_bytes": 0}, r"memory_bytes must be an integer >= 1048576, got 0"),
    ({"memory_bytes": 1.5e9}, r"memory_bytes must be .* got 1500000000\.0"),
    ({"memory_bytes": True}, r"got True"),
    ({"pids_max": 0}, r"pids_max must be an integer >= 1, got 0"),
    ({"cpu_weight": 10001}, r"cpu_weight must be an integer in \[1, 10000\], got 10001"),
])
def test_bad_box_arguments_are_refused_before_anything_is_created(run, kwargs, message):
    args = {"name": "ok", "memory_bytes": GiB, "pids_max": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        Box.create(args.pop("name"), run=run, **args)
    assert not [p for f in run.folders for p in f.iterdir() if p.is_dir()]


@needs_cgroups
def test_duplicate_box_and_bad_command_are_refused(run):
    with Box.create("twice", run=run, memory_bytes=GiB, pids_max=8) as box:
        with pytest.raises(ValueError, match="a box named 'twice' already exists"):
            Box.create("twice", run=run, memory_bytes=GiB, pids_max=8)
        assert all(f.is_dir() for f in box.folders), "the refused duplicate removed the first box"
        for cmd in ([], "python kernel.py", ["python", 3]):
            with pytest.raises(ValueError, match=re.escape(repr(cmd))):
                box.wrap(cmd)


CRASH = r"""
import os, signal, subprocess, sys
from nbjudge.cgroups import Box, Run, detect
run = Run.open(detect(), label="crashed")
box = Box.create("orphan", run=run, memory_bytes=1 << 30, pids_max=8)
sleeper = subprocess.Popen(box.wrap(["sleep", "60"]), start_new_session=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(sleeper.pid, *run.folders, flush=True)
os.kill(os.getpid(), signal.SIGKILL)     # the grader crashes: nothing is cleaned up
"""


@needs_cgroups
def test_cleanup_stale_removes_crashed_runs_only(run):
    out = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr
    sleeper, *folders = out.stdout.split()
    folders = [Path(f) for f in folders]
    try:
        assert all((f / "orphan").is_dir() for f in folders) and not _gone(int(sleeper))
        removed = cgroups.cleanup_stale(SUPPORT)
        assert set(folders) <= set(removed)
        assert not [f for f in folders if f.exists()], "a crashed run's folders are left"
        _wait_for(lambda: _gone(int(sleeper)), what="the orphaned process of the crashed run to die")
        assert all(f.is_dir() for f in run.folders), "cleanup_stale removed a live run"
    finally:
        if not _gone(int(sleeper)):
            os.kill(int(sleeper), signal.SIGKILL)
        for f in folders:
            for p in [f / "orphan", f]:
                cgroups._rmdir(p)


def _unified_base() -> Path | None:
    """The grader's cgroup in a v2 hierarchy mounted beside v1 (hybrid), if writable."""
    mount = Path("/sys/fs/cgroup/unified")
    if SUPPORT.version != 1 or not (mount / "cgroup.controllers").is_file() or os.geteuid() != 0:
        return None
    return cgroups._own_folder(mount, cgroups._own_paths(Path("/proc/self/cgroup").read_text()).get(""))


@pytest.mark.skipif(_unified_base() is None, reason="no hybrid v2 hierarchy beside v1 here "
                                                    "(on a v2 machine the tests above run on v2)")
def test_v2_joining_and_cgroup_kill_on_a_hybrid_unified_hierarchy():
    # v1 machine: the v2 hierarchy mounted beside it carries no controllers, so no limits can be
    # tried there, but joining, cgroup.kill, stats' absent files and removal run on real v2 files
    base = _unified_base()
    v2 = Support(True, "test", 2, (cgroups.Hierarchy(cgroups.V2_CONTROLLERS, base),))
    folder = base / f"nbjudge-pytest-{os.getpid()}"
    folder.mkdir()
    r = Run(v2, "pytest", (folder,))
    box = Box("v2", r, (folder,), memory_bytes=GiB, pids_max=8, cpu_weight=100)
    proc = subprocess.Popen(box.wrap([sys.executable, "-c", TREE]), stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        assert len(box.pids()) == 2 and (folder / "cgroup.kill").exists()
        assert box.stats().memory_peak_bytes is None  # no memory controller in this hierarchy
        box.remove()
        assert not folder.exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        cgroups._rmdir(folder)


# -- where no cgroup can be created ------------------------------------------------------------------
def _proc_cgroup(tmp_path, text):
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def test_no_cgroup_filesystem_is_reported(tmp_path):
    support = detect(tmp_path / "sys-fs-cgroup", proc_cgroup=_proc_cgroup(tmp_path, "0::/\n"))
    assert not support.available
    assert support.reason.startswith(f"no cgroup file system at {tmp_path / 'sys-fs-cgroup'}")
    assert support.summary.startswith("CPU and memory were not isolated between submissions: no cgroup")


def test_unreadable_proc_cgroup_is_reported(tmp_path):
    support = detect(tmp_path, proc_cgroup=tmp_path / "missing")
    assert not support.available and support.reason.startswith(f"cannot read {tmp_path / 'missing'}")


def test_v2_without_delegated_controllers_is_reported(tmp_path):
    root = tmp_path / "cg"
    (root / "grader.scope").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "grader.scope" / "cgroup.controllers").write_text("cpu io\n")
    support = detect(root, proc_cgroup=_proc_cgroup(tmp_path, "0::/grader.scope\n"))
    assert not support.available
    assert re.match(rf"cgroup v2 controller\(s\) memory, pids not delegated to {re.escape(str(root))}/grader.scope "
                    r"\(its cgroup.controllers: cpu io\); run the grader as `systemd-run --scope -p Delegate=yes",
                    support.reason), support.reason


def test_v1_layout_on_a_plain_file_system_is_not_taken_for_cgroups(tmp_path):
    # folders that look like v1 hierarchies, but mkdir there makes a plain folder, not a cgroup
    root = tmp_path / "cg"
    for controller, marker in cgroups.V1_MARKERS.items():
        (root / controller).mkdir(parents=True)
        for name in ("tasks", "cgroup.procs", marker):
            (root / controller / name).write_text("")
    support = detect(root, proc_cgroup=_proc_cgroup(tmp_path, "4:memory:/\n3:pids:/\n2:cpuacct:/\n1:cpu:/\n"))
    assert not support.available
    assert support.reason == f"{root / 'memory'} is not a cgroup file system (a new folder in it has no " \
                             "memory.limit_in_bytes)"
    assert sorted(p.name for p in (root / "memory").iterdir()) == ["cgroup.procs", "memory.limit_in_bytes", "tasks"]


def test_read_only_cgroupfs_is_reported(tmp_path, monkeypatch):
    # as in a container that mounts the host's cgroupfs read-only: mkdir fails with EROFS
    root = tmp_path / "cg"
    for controller, marker in cgroups.V1_MARKERS.items():
        (root / controller).mkdir(parents=True)
        (root / controller / "tasks").write_text("")

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
    monkeypatch.setattr(Path, "mkdir", read_only)
    support = detect(root, proc_cgroup=_proc_cgroup(tmp_path, "4:memory:/\n3:pids:/\n1:cpu:/\n"))
    assert not support.available
    assert support.reason == (f"cgroup v1 memory controller not writable: {root / 'memory'} (the cgroup file system "
                              "is read-only: a container without cgroup delegation)")


def test_v1_missing_hierarchy_is_reported(tmp_path):
    root = tmp_path / "cg"
    for controller in ("memory", "cpu"):
        (root / controller).mkdir(parents=True)
        (root / controller / "tasks").write_text("")
    support = detect(root, proc_cgroup=_proc_cgroup(tmp_path, "2:memory:/\n1:cpu:/\n"))
    assert not support.available and support.reason == f"cgroup v1 has no pids hierarchy at {root / 'pids'}"


@pytest.mark.skipif(os.geteuid() != 0 or not SUPPORT.available, reason="needs root and real cgroups, "
                    "to show that an unprivileged grader is told why it cannot have them")
def test_unprivileged_grader_is_told_to_run_as_root():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the same code, as user nobody
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            support = detect()
            os.write(write, json.dumps([support.available, support.reason]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        available, reason = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert available is False
    assert re.fullmatch(r"cgroup v[12] .*not writable: /sys/fs/cgroup/\S+ \(run as root, or delegate .*\)", reason), \
        reason


def test_run_refuses_unavailable_support():
    support = Support(False, "cgroup v1 memory controller not writable: /sys/fs/cgroup/memory (run as root)")
    with pytest.raises(CgroupsUnavailable, match=r"^CPU and memory were not isolated between submissions: "
                                                 r"cgroup v1 memory controller not writable"):
        Run.open(support)
    with pytest.raises(TypeError, match="support must be a Support from detect"):
        Run.open("v1")
    assert cgroups.cleanup_stale(support) == []


@needs_cgroups
def test_run_label_is_validated():
    with pytest.raises(ValueError, match=r"label must be .* got 'a\.b'"):
        Run.open(SUPPORT, label="a.b")
