#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fvmctl against api-test-server: VMs found by name in a runtime
directory, their state and config, pause/resume, snapshot, fork, exec,
invoke, and the life cycle (run, logs, stop, rm, restore) with the test
server standing in for fvm. --json output is parsed and checked; exit codes
are checked against fvmctl's table."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apitest import SERVER, Results, Server  # noqa: E402

FVMCTL = os.environ.get("FVMCTL", "fvmctl")
res = Results()
# Short: socket paths must fit in 108 bytes.
D = tempfile.mkdtemp(prefix="fvmctl-", dir="/tmp")
ENV = dict(os.environ, FVM_RUNTIME_DIR=D, FVM_BIN=SERVER)


def ctl(*args, stdin=None, env=ENV):
    p = subprocess.run([FVMCTL, *args], capture_output=True, text=True, input=stdin, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ctl_json(*args, **kw):
    code, out, err = ctl("--json", *args, **kw)
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, None, f"not JSON: {out!r} {err}"


def expect(what, got, want, detail=""):
    res.check(got == want, what, f"got {got!r}, want {want!r} {detail}")


def write_pid(name, pid):
    with open(os.path.join(D, name + ".pid"), "w") as f:
        f.write(f"{pid}\n")


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def gone(pid):
    """No such process, or a zombie its (re)parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def listing():
    code, doc, err = ctl_json("ls")
    return {v["name"]: v for v in doc} if code == 0 and isinstance(doc, list) else {}


def records(name):
    path = os.path.join(D, name + ".rec")
    return open(path).read().splitlines() if os.path.exists(path) else []


def by_name_and_state():
    vm1 = Server(state="running", name="vm1", directory=D)
    write_pid("vm1", vm1.pid)
    try:
        # A dead VM: a socket nobody listens on and a pid that is gone.
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.join(D, "dead.sock"))
        s.close()
        write_pid("dead", dead_pid())

        vms = listing()
        expect("ls finds vm1 and dead", sorted(vms), ["dead", "vm1"])
        expect("ls: vm1 is Running", (vms.get("vm1") or {}).get("state"), "Running")
        expect("ls: vm1 pid", (vms.get("vm1") or {}).get("pid"), vm1.pid)
        expect("ls: vm1 socket", (vms.get("vm1") or {}).get("socket"), os.path.join(D, "vm1.sock"))
        expect("ls: dead is dead", ((vms.get("dead") or {}).get("state"), (vms.get("dead") or {}).get("alive")),
               ("dead", False))
        code, out, _ = ctl("ls")
        res.check(code == 0 and out.splitlines()[0].split() == ["NAME", "PID", "STATE", "SOCKET"]
                  and any(line.split()[:3] == ["vm1", str(vm1.pid), "Running"] for line in out.splitlines()),
                  "ls table", out)
        code, out, _ = ctl("--runtime-dir", D, "--json", "ls", env=dict(os.environ, FVM_RUNTIME_DIR="/nonexistent"))
        res.check(code == 0 and "vm1" in out, "--runtime-dir overrides the environment", out)
        code, out, _ = ctl("--json", "ls", env=dict(os.environ, FVM_RUNTIME_DIR=D + "/none"))
        expect("ls of a missing directory is empty", (code, out.strip()), (0, "[]"))

        code, doc, err = ctl_json("info", "vm1")
        res.check(code == 0 and doc["name"] == "vm1" and doc["pid"] == vm1.pid and doc["info"]["state"] == "Running"
                  and doc["config"]["machine-config"]["vcpu_count"] == 1, "info --json", f"{doc} {err}")
        code, out, _ = ctl("info", "vm1")
        res.check(code == 0 and "state:    Running" in out and "vcpus:    1" in out, "info text", out)

        expect("pause --json", ctl_json("pause", "vm1")[:2], (0, {"name": "vm1", "state": "Paused"}))
        expect("resume", ctl("resume", "vm1")[:2], (0, "vm1: Running\n"))
        code, _, err = ctl("resume", "--json", "vm1")
        expect("--json after the command", code, 0, err)

        # Errors and their exit codes.
        code, _, err = ctl("pause", "dead")
        res.check(code == 4 and "not running" in err and "fvmctl rm dead" in err, "pause of a dead VM: exit 4", err)
        code, _, err = ctl("info", "nosuch")
        res.check(code == 3 and "no VM named 'nosuch'" in err, "unknown VM: exit 3", err)
        expect("bad name: exit 2", ctl("info", "bad/name")[0], 2)
        expect("unknown command: exit 2", ctl("frobnicate")[0], 2)
        expect("missing argument: exit 2", ctl("pause")[0], 2)
        code, out, _ = ctl("pause", "--help")
        res.check(code == 0 and out.startswith("usage: fvmctl pause NAME"), "pause --help", out)
        code, out, _ = ctl("--help")
        res.check(code == 0 and "Commands:" in out and "invoke" in out, "fvmctl --help", out)

        # snapshot of a running VM: pause, save, resume; paths made absolute.
        code, doc, err = ctl_json("snapshot", "vm1", "snap/state", "snap/mem")
        res.check(code == 0 and doc["snapshot_path"] == os.path.join(os.getcwd(), "snap/state"),
                  "snapshot --json", f"{doc} {err}")
        rec = vm1.records()[-3:]
        res.check(rec[0] == "set_vm_state Paused" and rec[1].startswith("snapshot_create state=/")
                  and rec[2] == "set_vm_state Resumed", "snapshot pauses, saves, resumes", str(rec))

        # exec passes output and exit status through.
        expect("exec echo", ctl("exec", "vm1", "--", "echo", "hi", "there")[:2], (0, "hi there\n"))
        code, out, err = ctl("exec", "vm1", "--", "false")
        expect("exec false: exit 1 and stderr", (code, err), (1, "false: failed\n"))
        expect("exec killed: 128+9", ctl("exec", "vm1", "--", "kill")[0], 137)
        expect("exec env", ctl("exec", "-e", "A=1", "-e", "B=2", "vm1", "--", "env")[:2], (0, "A=1\nB=2\n"))
        expect("exec stdin", ctl("exec", "-i", "vm1", "--", "cat", stdin="piped\n")[:2], (0, "piped\n"))
        code, _, err = ctl("exec", "vm1", "--", "timeout")
        res.check(code == 125 and "HTTP 504" in err, "exec failure: exit 125", err)
        code, doc, _ = ctl_json("exec", "vm1", "--", "echo", "j")
        res.check(code == 0 and doc["stdout"] == "j\n" and doc["exit_code"] == 0, "exec --json", str(doc))
        expect("exec without a command: 125", ctl("exec", "vm1")[0], 125)

        # fork of a running VM leaves pausing to the VM, and adopts clones into the runtime directory.
        code, doc, err = ctl_json("fork", "vm1", "2")
        res.check(code == 0 and [c["name"] for c in doc["clones"]] == ["vm1-0", "vm1-1"] and doc["template"] == "vm1",
                  "fork --json", f"{doc} {err}")
        res.check(vm1.records()[-1] == "fork count=2 prefix=vm1 resume=1" and
                  "set_vm_state Paused" not in vm1.records()[-2:],
                  "fork asks the running VM itself", str(vm1.records()[-2:]))
        res.check(all(open(os.path.join(D, f"vm1-{i}.pid")).read().strip() == str(vm1.pid) for i in range(2)),
                  "fork wrote the clones' pid files")
        code, out, _ = ctl("fork", "--prefix", "w", "--paused", "vm1", "1")
        res.check(code == 0 and out == "w-2\n" and vm1.records()[-1] == "fork count=1 prefix=w resume=0",
                  "fork --prefix --paused", out)
        expect("fork 0: exit 2", ctl("fork", "vm1", "0")[0], 2)
        # invoke forks from a paused template.
        expect("pause before invoke", ctl("pause", "vm1")[0], 0)
        expect("invoke", ctl("invoke", "vm1", "--", "echo", "once")[:2], (0, "once\n"))
        code, doc, _ = ctl_json("invoke", "vm1", "--", "echo")
        res.check(code == 0 and doc["clone"].startswith("invoke-"), "invoke --json names the clone", str(doc))
        code, _, err = ctl("exec", "vm1", "--", "echo")
        res.check(code == 125 and "only allowed while the VM is running" in err and "(HTTP 400)" in err,
                  "exec on a paused VM explains why", err)
        for i in range(2):
            os.unlink(os.path.join(D, f"vm1-{i}.pid"))
        os.unlink(os.path.join(D, "w-2.pid"))

        # Refusals and missing backends map to their exit codes.
        with Server(state="not-started", name="fresh", directory=D) as fresh, \
                Server(state="running", name="nobackend", directory=D, null_ops=True) as nb:
            write_pid("fresh", fresh.pid)
            write_pid("nobackend", nb.pid)
            code, _, err = ctl("pause", "fresh")
            res.check(code == 5 and "after the VM has started" in err and "(HTTP 400)" in err,
                      "refused request: exit 5", err)
            code, _, err = ctl("pause", "nobackend")
            res.check(code == 6 and "not implemented" in err, "501: exit 6", err)
            code, doc, _ = ctl_json("info", "nobackend")
            res.check(code == 0 and doc["config"] is None, "info without a config backend", str(doc))
        for n in ("fresh", "nobackend"):
            os.unlink(os.path.join(D, n + ".pid"))

        # rm of a dead VM clears its stale files.
        code, doc, _ = ctl_json("rm", "dead")
        res.check(code == 0 and not os.path.exists(os.path.join(D, "dead.sock"))
                  and not os.path.exists(os.path.join(D, "dead.pid")), "rm of a dead VM", str(doc))
        expect("stopped VM gone from ls", sorted(listing()), ["vm1"])

        # stop a running VM: SendCtrlAltDel, and it exits.
        ctl("resume", "vm1")
        code, doc, err = ctl_json("stop", "vm1")
        res.check(code == 0 and doc == {"name": "vm1", "state": "stopped"}, "stop --json", f"{doc} {err}")
        res.check(vm1.proc.wait(timeout=5) == 0, "the VMM exited cleanly")
        res.check(not os.path.exists(os.path.join(D, "vm1.sock")) and not os.path.exists(os.path.join(D, "vm1.pid")),
                  "stop removed the socket and pid file")
        code, _, err = ctl("stop", "vm1")
        res.check(code in (3, 4), "stop of a stopped VM: exit 3 or 4", f"{code} {err}")
    finally:
        vm1.stop()


def life_cycle():
    code, doc, err = ctl_json("run", "new1", "--state", "running", "--kernel", "/k", "--record", os.path.join(D, "new1.rec"))
    res.check(code == 0 and doc["name"] == "new1" and doc["socket"] == os.path.join(D, "new1.sock")
              and doc["log"] == os.path.join(D, "new1.log"), "run --json", f"{doc} {err}")
    pid = doc["pid"] if doc else 0
    expect("run wrote the pid file", open(os.path.join(D, "new1.pid")).read().strip(), str(pid))
    expect("run: ls shows it Running", listing().get("new1", {}).get("state"), "Running")
    code, out, _ = ctl("logs", "new1")
    res.check(code == 0 and "ignoring fvm flag '--kernel'" in out and "serving" in out, "logs", out)
    code, out, _ = ctl("logs", "-n", "1", "new1")
    res.check(code == 0 and out.startswith("api-test-server: serving") and out.count("\n") == 1, "logs -n 1", out)
    code, _, err = ctl("run", "new1")
    res.check(code == 9 and "already running" in err, "run of a taken name: exit 9", err)
    code, _, err = ctl("rm", "new1")
    res.check(code == 9 and "stop it first" in err, "rm of a running VM: exit 9", err)
    code, _, _ = ctl("stop", "new1")
    res.check(code == 0 and gone(pid), "stop after run", str(code))
    res.check(os.path.exists(os.path.join(D, "new1.log")), "stop keeps the log")
    code, _, _ = ctl("rm", "new1")
    res.check(code == 0 and not os.path.exists(os.path.join(D, "new1.log")), "rm removes the log")

    # A VMM that has not started gets SIGTERM at once.
    code, doc, _ = ctl_json("run", "new2")
    t = time.time()
    code, _, err = ctl("stop", "new2")
    res.check(code == 0 and time.time() - t < 3, "stop of a not-started VM uses SIGTERM", err)
    code, doc, _ = ctl_json("run", "new3")
    code, _, err = ctl("rm", "--force", "new3")
    res.check(code == 0 and not any(f.startswith("new3.") for f in os.listdir(D)), "rm --force", err)
    ctl("rm", "new2")

    # A VMM that dies at start-up: the error shows the log.
    code, _, err = ctl("run", "bad", env=dict(ENV, FVM_BIN="/bin/false"))
    res.check(code == 1 and "exited during start-up" in err, "run of a failing fvm", err)
    res.check(not os.path.exists(os.path.join(D, "bad.pid")), "failed run leaves no pid file")
    ctl("rm", "bad")
    code, _, err = ctl("run", "nofvm", env=dict(ENV, FVM_BIN="/nonexistent/fvm"))
    res.check(code == 1 and "cannot find the fvm executable" in err, "run without fvm", err)

    # restore: a new VM, then PUT /snapshot/load.
    rec = os.path.join(D, "r1.rec")
    code, doc, err = ctl_json("restore", "--resume", "r1", "st", "mem", "--record", rec)
    res.check(code == 0 and doc["name"] == "r1", "restore --json", f"{doc} {err}")
    res.check(any(line.startswith(f"snapshot_load state={os.getcwd()}/st mem={os.getcwd()}/mem resume=1")
                  for line in records("r1")), "restore loaded the snapshot", str(records("r1")))
    expect("restored VM runs", listing().get("r1", {}).get("state"), "Running")
    ctl("stop", "--force", "r1")
    ctl("rm", "r1")
    code, _, err = ctl("restore", "r2", "fail-enoent", "mem")
    res.check(code == 5 and not os.path.exists(os.path.join(D, "r2.pid")), "failed restore cleans up", err)
    ctl("rm", "r2")

    code, _, err = ctl("disk", "info")
    res.check(code in (0, 1, 2, 6), "disk is wired (or says it is not built in)", err)


def main():
    try:
        by_name_and_state()
        life_cycle()
    finally:
        shutil.rmtree(D, ignore_errors=True)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
