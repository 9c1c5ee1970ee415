"""The grading sandbox: what the student's kernel and the judge can see and do
(nbjudge.sandbox, student_kernel, execute, judge).

Fast tests check the bwrap command lines and the refusals; the slow tests start real kernels in
the sandbox and probe them from the inside: each probe cell prints one JSON object, and every
test asserts on one probe.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbjudge.sandbox import (Sandbox, SandboxUnavailable, build_command, check_available, check_exposure,
                             check_uids, judge_command, package_view, python_paths, student_kit)

ROOT = Path(__file__).resolve().parents[1]


# -- the command line and the refusals (fast) -------------------------------------------------------
def test_missing_bwrap_is_refused_with_install_hint():
    with pytest.raises(SandboxUnavailable, match=r"'/nonexistent/bwrap' was not found.*apt-get install bubblewrap"):
        check_available(Sandbox(bwrap="/nonexistent/bwrap"))


def test_broken_bwrap_is_refused(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(SandboxUnavailable, match=r"cannot create a sandbox here: bwrap: No permissions.*apt-get"):
        check_available(Sandbox(bwrap=str(fake)))


def test_environment_inside_the_course_root_is_refused(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    with pytest.raises(SandboxUnavailable, match=r"includes .*course, which contains .*solutions: a kernel would"):
        check_exposure([str(course)], [str(course / "solutions")])
    check_exposure([str(course / "src"), str(course / ".venv")], [str(course / "solutions")])  # siblings are fine


def test_command_line_isolates_the_kernel():
    box = Sandbox(tmp_mb=64)
    cmd = build_command(["python", "launcher.py"], workdir="/c/autograded/alice/hw", stage="/scratch/stage",
                        conn_dir="/scratch/conn", sandbox=box, bwrap="bwrap", uid=61003,
                        ro_paths=["/opt/venv", "/c/src"], kit="/scratch/kit",
                        overlays=[("/scratch/view/nnlab", "/c/src/nnlab"), ("/scratch/view/nbjudge", "/c/src/nbjudge")])
    text = " ".join(cmd)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                 "--clearenv", "--remount-ro /"):
        assert flag in text, f"{flag} missing from {text}"
    assert "--ro-bind /opt/venv /opt/venv" in text and "--ro-bind /c/src /c/src" in text
    assert "--ro-bind /scratch/stage /run/nbjudge/stage" in text and "--ro-bind /scratch/kit /run/nbjudge/kit" in text
    assert "--ro-bind /scratch/view/nnlab /c/src/nnlab" in text, "the assignment's view of the package"
    assert "--ro-bind /scratch/view/nbjudge /c/src/nbjudge" in text, "the grader is hidden from the student"
    assert f"--size {64 * 2**20} --tmpfs /c/autograded/alice/hw" in text, "working folder must be a sized tmpfs"
    assert f"--size {64 * 2**20} --tmpfs /tmp" in text
    binds = [cmd[i + 2] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]
    system = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}
    assert set(binds) - system - {"/opt/venv", "/c/src", "/run/nbjudge/stage", "/run/nbjudge/kit", "/scratch/conn",
                                  "/c/src/nnlab", "/c/src/nbjudge"} == set(), binds
    assert "--reuid=61003" in text and "--no-new-privs" in text
    assert cmd[-2:] == ["python", "launcher.py"]


def test_judge_command_line_isolates_the_judge():
    cmd = judge_command(["python", "-m", "nbjudge.judge"], stage="/scratch/stage", sandbox=Sandbox(), bwrap="bwrap",
                        uid=61503, ro_paths=["/opt/venv", "/c/src"])
    text = " ".join(cmd)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                 "--clearenv", "--remount-ro /", "--reuid=61503", "--no-new-privs"):
        assert flag in text, f"{flag} missing from {text}"
    binds = {cmd[i + 2] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")}
    assert "--bind" not in cmd, "the judge writes nothing outside its /tmp"
    assert binds - {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} == {
        "/opt/venv", "/c/src", "/run/nbjudge/work"}, binds


def test_package_view_keeps_only_allowed_modules(tmp_path):
    import importlib.util
    real = Path(importlib.util.find_spec("nnlab").submodule_search_locations[0]).resolve()
    overlays = package_view(tmp_path, "nnlab", ["datasets"], "hw")
    grader = str(Path(importlib.util.find_spec("nbjudge").submodule_search_locations[0]).resolve())
    assert (str(tmp_path / "nbjudge"), grader) in overlays and (str(tmp_path / "nnlab"), str(real)) in overlays
    assert "ImportError" in (tmp_path / "nbjudge" / "__init__.py").read_text(), "importing the grader fails"
    view = tmp_path / "nnlab"
    assert (view / "datasets.py").read_text() == (real / "datasets.py").read_text()
    assert (view / "_validation.py").is_file(), "private helpers stay"
    stub = (view / "layers.py").read_text()
    assert stub.startswith("raise ImportError(") and "nnlab.layers is not available in assignment hw" in stub
    assert "may import only nnlab.datasets" in stub
    assert "from . import datasets" in (view / "__init__.py").read_text()
    assert package_view(tmp_path / "all", "nnlab", None, "hw") == [(str(tmp_path / "all" / "nbjudge"), grader)], \
        "None allows the whole package (the grader stays hidden)"


def test_sandbox_user_ids_must_be_free():
    with pytest.raises(SandboxUnavailable, match=r"user ids 0 \(root\) belong to accounts of this system"):
        check_uids([0, 61990])
    check_uids([61990, 61991])


def test_python_environment_is_mounted():
    paths = python_paths()
    prefix = os.path.realpath(sys.prefix)
    assert any(prefix == p or prefix.startswith(p + "/") for p in paths), (prefix, paths)
    import nnlab
    src = os.path.realpath(Path(nnlab.__file__).parents[1])
    assert any(src == p or src.startswith(p + "/") for p in paths), (src, paths)


def test_programs_that_libraries_start_are_recognised():
    from nbjudge.execute import BENIGN_PROGRAMS, _program
    assert _program("('fc-list', ['fc-list', '--help'], None, None)") in BENIGN_PROGRAMS
    assert _program("('/usr/bin/uname', ['uname', '-p'], None, None)") == "uname"
    assert _program("('/bin/sh', ['/bin/sh', '-c', 'curl x'], None, None)") not in BENIGN_PROGRAMS


def test_limits_follow_the_configuration():
    limits = Sandbox(memory_mb=300, max_processes=40, max_file_mb=5, cpu_seconds=9).limits()
    assert limits == {"AS": 300 * 2**20, "NPROC": 40, "FSIZE": 5 * 2**20, "CPU": 9, "NOFILE": 1024, "CORE": 0}


# -- real kernels in the sandbox (slow) ---------------------------------------------------------
PROBES = {
    "whoami": "import os, json; print(json.dumps({'uid': os.getuid(), 'cwd': os.getcwd(), "
              "'files': sorted(os.listdir('.')), 'root': sorted(os.listdir('/'))}))",
    "secrets": "import os, json\nres = {}\nfor p in SECRETS:\n    try:\n        open(p).read(); res[p] = 'READ'\n"
               "    except OSError as e:\n        res[p] = type(e).__name__\nprint(json.dumps(res))",
    "write": "import json\nres = {}\nfor p in ['mine.txt', '/tmp/t.txt', PREFIX + '/x.txt', '/usr/x.txt', '/x.txt']:\n"
             "    try:\n        open(p, 'w').write('x'); res[p] = 'ok'\n    except OSError as e:\n"
             "        res[p] = type(e).__name__\nprint(json.dumps(res))",
    "network": "import socket, json\nres = {}\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3); "
               "res['tcp'] = 'connected'\nexcept OSError as e:\n    res['tcp'] = str(e)\n"
               "try:\n    socket.getaddrinfo('example.com', 80); res['dns'] = 'resolved'\nexcept OSError as e:\n"
               "    res['dns'] = str(e)\nprint(json.dumps(res))",
    "limits": "import resource, json\nr = {n: resource.getrlimit(getattr(resource, 'RLIMIT_' + n)) for n in "
              "['AS', 'NPROC', 'FSIZE', 'CPU', 'CORE']}\ntry:\n    resource.setrlimit(resource.RLIMIT_AS, "
              "(resource.RLIM_INFINITY, resource.RLIM_INFINITY)); r['raised'] = True\nexcept (ValueError, OSError):\n"
              "    r['raised'] = False\nprint(json.dumps(r))",
    "env": "import os, json; print(json.dumps({'leak': os.environ.get('NNLAB_GRADER_SECRET'), "
           "'home': os.environ.get('HOME')}))",
    "processes": "import threading, json, time\nn = 0\nev = threading.Event()\ntry:\n    for _ in range(500):\n"
                 "        threading.Thread(target=ev.wait, daemon=True).start(); n += 1\nexcept RuntimeError as e:\n"
                 "    err = str(e)\nelse:\n    err = None\nev.set()\nprint(json.dumps({'started': n, 'error': err}))",
    "memory": "import json\ntry:\n    blob = bytearray(1100 * 2**20); res = 'allocated'\nexcept MemoryError:\n"
              "    res = 'MemoryError'\nprint(json.dumps(res))",
    "filesize": "import json\ntry:\n    open('big.bin', 'wb').write(b'0' * (9 * 2**20)); res = 'written'\n"
                "except OSError as e:\n    res = e.strerror\nprint(json.dumps(res))",
}


def _test_cell(source):
    """A test cell of an assignment, as the grader's restored notebook holds it (runs in the judge)."""
    return new_code_cell(source, metadata={"nbjudge": {"origin": "instructor"}, "nbgrader": {
        "grade": True, "grade_id": "t", "locked": True, "points": 1, "solution": False, "schema_version": 3}})


def _run(cells, box, tmp, workdir, stage_files=None, timeout=20, allowed=None):
    from traitlets.config import Config

    from nbjudge.execute import SandboxedExecute

    scratch = Path(tempfile.mkdtemp(prefix="nbjudge-test-", dir=tmp))
    os.chmod(scratch, 0o755)
    stage = scratch / "stage"
    stage.mkdir()
    for name, text in (stage_files or {}).items():
        (stage / name).write_text(text)
        os.chmod(stage / name, 0o644)
    os.chmod(stage, 0o755)
    config = Config()
    config.Execute.timeout = timeout
    ex = SandboxedExecute(config=config, sandbox=box)
    ex.grading = {"workdir": workdir, "stage": str(stage), "scratch": str(scratch),
                  "uid": 61990 if os.geteuid() == 0 else None, "judge_uid": 61991 if os.geteuid() == 0 else None,
                  "ro_paths": python_paths(), "bwrap": check_available(box), "host_cwd": str(scratch),
                  "kit": student_kit(scratch / "kit"), "overlays": package_view(scratch / "view", "nnlab", allowed, "hw")}
    nb = new_notebook(cells=[c if not isinstance(c, str) else new_code_cell(c) for c in cells])
    nb, _ = ex.preprocess(nb, {"nbgrader": {"notebook": "probe"}})
    return nb, ex


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    course = tmp / "course"
    secrets = [course / "gradebook.db", course / "solutions" / "hw" / "assignment.ipynb",
               course / "submitted" / "bob" / "hw" / "assignment.ipynb", Path.home() / ".bash_history",
               ROOT / "solutions" / "_header.ipynb", ROOT / "nbgrader_config.py"]
    for path in secrets[:3]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("secret")
    os.environ["NNLAB_GRADER_SECRET"] = "must not leak"
    box = Sandbox(memory_mb=1024, max_processes=48, max_file_mb=8, tmp_mb=64)
    setup = f"SECRETS = {[str(p) for p in secrets]!r}\nPREFIX = {os.path.realpath(sys.prefix)!r}"
    cells = [setup] + list(PROBES.values())
    try:
        nb, ex = _run(cells, box, tmp, str(course / "autograded" / "alice" / "hw"), {"data.csv": "1,2\n"})
    finally:
        del os.environ["NNLAB_GRADER_SECRET"]
    out = {}
    for name, cell in zip(PROBES, nb.cells[1:]):
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"probe {name} raised {errors[0].ename}: {errors[0].evalue}"
        out[name] = json.loads(text.strip().splitlines()[-1])
    return out, ex, course


@pytest.mark.slow
def test_kernel_runs_unprivileged_in_its_own_folder(probed):
    out, _, course = probed
    who = out["whoami"]
    assert who["uid"] != 0 or os.geteuid() != 0, "the kernel must not run as root"
    assert who["cwd"] == str(course / "autograded" / "alice" / "hw")
    assert who["files"] == ["data.csv"], "the working folder holds exactly the staged files"
    # the system folders, plus the first component of each folder the sandbox binds: the course's
    # scratch folder and the Python environment (wherever the checkout lives, e.g. /work or /check)
    bound = {Path(p).parts[1] for p in [str(course), *python_paths()]}
    system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp", "usr"}
    assert set(who["root"]) <= system | bound, (sorted(who["root"]), sorted(system | bound))
    assert not {"root", "home", "srv", "mnt", "media", "var", "boot"} & (set(who["root"]) - bound), who["root"]


@pytest.mark.slow
def test_course_secrets_and_home_are_invisible(probed):
    out, _, _ = probed
    assert out["secrets"], "no secret was probed"
    for path, result in out["secrets"].items():
        assert result in ("FileNotFoundError", "PermissionError"), f"{path} was readable in the sandbox: {result}"


@pytest.mark.slow
def test_only_the_working_folder_and_tmp_are_writable(probed):
    out, _, _ = probed
    writes = out["write"]
    assert writes["mine.txt"] == "ok" and writes["/tmp/t.txt"] == "ok"
    for path, result in writes.items():
        if path not in ("mine.txt", "/tmp/t.txt"):
            assert result != "ok", f"the kernel could write {path}"


@pytest.mark.slow
def test_no_network(probed):
    out, ex, _ = probed
    assert out["network"]["tcp"] != "connected" and "unreachable" in out["network"]["tcp"].lower()
    assert out["network"]["dns"] != "resolved"
    kinds = {i.kind for i in ex.incidents}
    assert "network" in kinds, "the attempt must be reported"


@pytest.mark.slow
def test_resource_limits_are_set_and_cannot_be_raised(probed):
    out, _, _ = probed
    lim = out["limits"]
    assert lim["AS"] == [1024 * 2**20] * 2
    assert lim["FSIZE"] == [8 * 2**20] * 2 and lim["CORE"] == [0, 0]
    assert lim["NPROC"][0] >= 48 and lim["NPROC"][0] == lim["NPROC"][1]
    assert lim["raised"] is False, "student code raised its own memory limit"


@pytest.mark.slow
def test_grader_environment_does_not_leak(probed):
    out, _, _ = probed
    assert out["env"]["leak"] is None and out["env"]["home"] == "/tmp/home"


@pytest.mark.slow
def test_process_limit_stops_thread_and_fork_bombs(probed):
    out, _, _ = probed
    if os.geteuid() == 0:
        assert out["processes"]["error"] is not None and out["processes"]["started"] < 48, out["processes"]


@pytest.mark.slow
def test_memory_and_file_size_limits(probed):
    out, ex, _ = probed
    assert out["memory"] == "MemoryError"
    assert out["filesize"] == "File too large"
    assert not [i for i in ex.incidents if i.kind in ("timeout", "kernel-died")], ex.incidents


@pytest.mark.slow
def test_timeout_and_crash_restart_the_kernel_and_replay(tmp_path):
    box = Sandbox(max_restarts=3)
    cells = ["x = 41", "while True:\n    pass", "print(x + 1)", "import os\nos._exit(3)", "print(x + 2)",
             "print('y' * 3_000_000)"]
    nb, ex = _run(cells, box, tmp_path, str(tmp_path / "w"), timeout=5)
    streams = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream") for c in nb.cells]
    errors = [[o.ename for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert errors[1] == ["CellTimeoutError"] and errors[3] == ["DeadKernelError"]
    assert streams[2].strip() == "42" and streams[4].strip() == "43", "earlier cells were not replayed"
    assert len(streams[5]) < box.max_output_bytes + 100 and "truncated by the grader" in streams[5]
    kinds = [i.kind for i in ex.incidents]
    assert kinds.count("timeout") == 1 and kinds.count("kernel-died") == 1 and "output-truncated" in kinds
    assert not [k for k in kinds if k not in ("timeout", "kernel-died", "output-truncated")], ex.incidents


@pytest.mark.slow
def test_tests_run_in_the_judge_whatever_the_kernel_does(tmp_path):
    cells = ["import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None\nnp.allclose = lambda *a: True",
             "get_ipython().showtraceback = lambda *a, **k: None\ndef twice(x):\n    return x + 1",
             _test_cell("import numpy as np\nnp.testing.assert_allclose(twice(np.arange(3.0)), [0, 2, 4], "
                        "err_msg='twice is wrong')"),
             _test_cell("print(type(twice).__name__, twice.__name__)\nassert twice(2) == 4, 'wrong'")]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"))
    first, second = nb.cells[2].outputs, nb.cells[3].outputs
    assert [o.ename for o in first if o.output_type == "error"] == ["AssertionError"]
    assert "twice is wrong" in first[-1].evalue
    assert [o.text for o in second if o.output_type == "stream"] == ["Remote twice\n"]
    assert [o.evalue for o in second if o.output_type == "error"] == ["wrong"]
    assert not [i for i in ex.incidents if i.severity in ("integrity", "error")], ex.incidents


@pytest.mark.slow
def test_the_student_sees_only_the_allowed_package_modules_and_the_judge_all(tmp_path):
    probe = ("import json\nres = {}\nfor m in ['nnlab.datasets', 'nnlab.layers', 'nbjudge', 'nbjudge.judge']:\n"
             "    try:\n        __import__(m); res[m] = 'ok'\n    except ImportError as e:\n        res[m] = str(e)\n"
             "print(json.dumps(res))")
    cells = [probe, _test_cell("import nnlab.layers, nbjudge.judge\nprint('judge ok')")]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"), allowed=["datasets"])
    res = json.loads(nb.cells[0].outputs[0].text)
    assert res["nnlab.datasets"] == "ok"
    assert "nnlab.layers is not available in assignment hw" in res["nnlab.layers"], res
    assert res["nbjudge"] != "ok" and res["nbjudge.judge"] != "ok", "the grader must be hidden from the student"
    assert [o.text for o in nb.cells[1].outputs if o.output_type == "stream"] == ["judge ok\n"], nb.cells[1].outputs


@pytest.mark.slow
def test_the_judge_sees_no_course_and_no_network(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / "gradebook.db").write_text("secret")
    probe = _test_cell("import os, socket, json\nres = {'uid': os.getuid(), 'cwd': os.getcwd()}\n"
                       f"res['course'] = os.path.exists({str(course / 'gradebook.db')!r})\n"
                       "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=3); res['net'] = 'connected'\n"
                       "except OSError as e:\n    res['net'] = 'no'\nprint(json.dumps(res))")
    nb, ex = _run(["x = 1", probe], Sandbox(), tmp_path, str(course / "autograded" / "a" / "hw"))
    res = json.loads(nb.cells[1].outputs[0].text)
    assert res["course"] is False and res["net"] == "no" and res["cwd"] == "/run/nbjudge/work"
    if os.geteuid() == 0:
        assert res["uid"] == 61991, "the judge runs as its own user"


@pytest.mark.slow
def test_honest_notebook_raises_no_incident(tmp_path):
    cells = ["import numpy as np\nimport warnings", "print(np.allclose(np.ones(3), 1.0))",
             "assert np.isclose(0.1 + 0.2, 0.3)",
             "import matplotlib.pyplot as plt  # builds a font cache, running fc-list: not an incident"]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"))
    assert ex.incidents == [], ex.incidents


DESYNC = '''import sys, json
_b = sys.modules["_nbjudge" + "_bridge"]; _real = _b.serve
def serve(text):
    if json.loads(text).get("op") == "lookup":
        input("\\x00nbjudge-nested:" + json.dumps({"error": {"ename": "X", "evalue": "", "builtin": False}}))
        return
    return _real(text)
_b.serve = serve
def twice(x):
    return x'''

ESCAPE = '''def apply(f, x):
    try:
        ex = f.__globals__["__builtins__"]["exec"]
        ex("import sys; sys.modules['__main__'].run_cell = lambda *a: {'status': 'ok'}")
    except Exception as exc:
        print("refused:", exc)
    return x'''

MEMORY = '''import numpy
_buffer = numpy.full(8, 7.0)
class Pointer:
    # an array interface that points at this process's memory: valid here, nonsense in the judge
    def __getattr__(self, name):
        if name == "__array_interface__":
            return {"data": (_buffer.ctypes.data, False), "shape": (8,), "typestr": "<f8", "version": 3}
        raise AttributeError(name)
def make():
    return Pointer()'''


@pytest.mark.slow
def test_the_relay_refuses_answers_nobody_asked_for(tmp_path):
    """A kernel that answers a lookup through the callback channel (to shift every later frame by
    one) breaks the protocol: the test fails, and the kernel and the judge start afresh."""
    cells = [DESYNC, _test_cell("assert twice(2) == 4, 'twice(2) should be 4'"),
             _test_cell("assert False, 'this test must fail'")]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"))
    for cell in nb.cells[1:]:
        assert [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    assert any(i.kind == "protocol" for i in ex.incidents), ex.incidents


@pytest.mark.slow
def test_a_function_of_the_test_gives_the_student_no_way_into_the_judge(tmp_path):
    cells = [ESCAPE, _test_cell("import numpy as np\nassert apply(lambda z: z, 3) == 3\nassert False, 'must fail'")]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"))
    assert [o.evalue for o in nb.cells[1].outputs if o.output_type == "error"] == ["must fail"], nb.cells[1].outputs


@pytest.mark.slow
def test_numpy_never_reads_memory_a_student_object_points_to(tmp_path):
    cells = [MEMORY, _test_cell("import numpy as np\nv = np.asarray(make())\nprint(v.tolist())")]
    nb, ex = _run(cells, Sandbox(), tmp_path, str(tmp_path / "w"))
    assert [o.text for o in nb.cells[1].outputs if o.output_type == "stream"] == [str([7.0] * 8) + "\n"], \
        nb.cells[1].outputs
