# SPDX-License-Identifier: MIT
"""A live fvm on /dev/kvm, driven the way users drive it.

The guest is guest/tiny/tiny-kernel (an ELF fvm boots like a vmlinux; it
prints "tiny: ready", then a '.' per 200 ms LAPIC tick, echoes console
input and powers off on 'q'). Checks, in order: the three ways to
configure a VM (flags, --config file, the API alone), the API's life
cycle with curl (start, pause, snapshot, fork, clones, resume, metrics),
restore of the snapshot in a new process, a tampered snapshot refused,
network, vsock and entropy devices over the API (without guest drivers:
their host sides), and fvmctl over the same VMs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FVM = os.environ["FVM"]
FVMCTL = os.environ["FVMCTL"]
TINY = os.environ["TINY_KERNEL"]

if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    print("SKIP: /dev/kvm is not available")
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

failures = []
checks = 0


def check(what, ok, detail=""):
    global checks
    checks += 1
    if not ok:
        failures.append(f"{what}: {detail}")
        print(f"FAIL {what}: {detail}", flush=True)


def curl(sock, method, path, body=None):
    args = ["curl", "-sS", "--unix-socket", sock, "-X", method, "-w", "\n%{http_code}",
            "-H", "Content-Type: application/json", f"http://localhost{path}"]
    if body is not None:
        args += ["--data-binary", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    text, _, code = out.rpartition("\n")
    try:
        data = json.loads(text) if text.strip().startswith(("{", "[")) else text
    except json.JSONDecodeError:
        data = text
    return int(code or 0), data


def qemu_img_info(path):
    if not shutil.which("qemu-img"):
        return {"error": "qemu-img is not installed (apt-get install qemu-utils)"}
    r = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    chk = subprocess.run(["qemu-img", "check", "-U", path], capture_output=True, text=True)
    info = json.loads(r.stdout)
    info["check"] = chk.returncode
    return info if chk.returncode == 0 else {"error": "qemu-img check: " + chk.stdout}


def wait_for(pred, timeout=15.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def ticking(log, n=2, timeout=5.0):
    """The guest in this log is running: n more ticks appear."""
    start = read(log).count(".")
    return wait_for(lambda: read(log).count(".") >= start + n, timeout)


def stalled(log, seconds=0.7):
    before = read(log).count(".")
    time.sleep(seconds)
    return read(log).count(".") == before


def start_api(sock, log, *extra):
    proc = subprocess.Popen([FVM, "--api-sock", sock, "--console", log, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    check(f"{sock} appears", wait_for(lambda: os.path.exists(sock)), "no socket")
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def console_session(cmd):
    """Run fvm with its console on our pipes: ready, echo, then 'q' powers off."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = b""
    end = time.monotonic() + 15
    os.set_blocking(proc.stdout.fileno(), False)
    sent = False
    while time.monotonic() < end and proc.poll() is None:
        chunk = proc.stdout.read() or b""
        out += chunk
        if b"tiny: ready" in out and not sent:
            proc.stdin.write(b"xq")
            proc.stdin.flush()
            sent = True
        time.sleep(0.05)
    rc = stop(proc) if proc.poll() is None else proc.returncode
    out += proc.stdout.read() or b""
    return rc, out.decode(errors="replace"), proc.stderr.read().decode(errors="replace")


def three_ways(tmp):
    base, top = os.path.join(tmp, "base.raw"), os.path.join(tmp, "top.qcow2")
    with open(base, "wb") as f:
        f.truncate(4 << 20)
    rc, out, err = console_session([FVM, "--kernel", TINY, "--mem", "64M",
                                    "--drive", f"path={base},overlay={top},id=disk"])
    check("flags: boots", "tiny: ready" in out, out[-200:])
    check("flags: --drive overlay= creates the overlay over the image",
          qemu_img_info(top).get("backing-filename") == os.path.realpath(base), qemu_img_info(top))
    check("flags: console input reaches the guest", "x" in out.split("tiny: ready")[-1], out[-200:])
    check("flags: 'q' powers off with status 0", rc == 0, f"rc={rc} {err[-300:]}")

    cfg = os.path.join(tmp, "vm.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": TINY},
                   "machine-config": {"vcpu_count": 2, "mem_size_mib": 64}}, f)
    rc, out, err = console_session([FVM, "--config", cfg])
    check("config file: boots and powers off", "tiny: ready" in out and rc == 0, f"rc={rc} {err[-300:]}")

    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": TINY}, "gpu": {}}, f)
    r = subprocess.run([FVM, "--config", cfg], capture_output=True, text=True, timeout=10)
    check("config file: unknown section refused", r.returncode == 2 and "gpu" in r.stderr,
          f"rc={r.returncode} {r.stderr}")
    r = subprocess.run([FVM, "--kernel", "/etc/passwd"], capture_output=True, text=True, timeout=10)
    check("flags: a non-kernel file is refused with a reason",
          r.returncode == 1 and "neither a bzImage nor an ELF" in r.stderr, r.stderr)


def api_life_cycle(tmp):
    sock, log = os.path.join(tmp, "t.sock"), os.path.join(tmp, "t.log")
    proc = start_api(sock, log)
    check("socket mode 0600", (os.stat(sock).st_mode & 0o777) == 0o600, oct(os.stat(sock).st_mode))
    code, data = curl(sock, "GET", "/")
    check("GET / before start", code == 200 and data.get("state") == "Not started", f"{code} {data}")
    check("InstanceStart without a kernel is refused",
          curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 400)
    code, _ = curl(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    check("PUT /machine-config", code == 204, code)
    code, _ = curl(sock, "PUT", "/boot-source", {"kernel_image_path": TINY})
    check("PUT /boot-source", code == 204, code)
    disk = os.path.join(tmp, "data.raw")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    code, data = curl(sock, "PUT", "/drives/data", {"drive_id": "data", "path_on_host": disk,
                                                    "is_root_device": False, "is_read_only": False})
    check("PUT /drives with a raw image", code == 204, f"{code} {data}")
    code, data = curl(sock, "PUT", "/drives/data", {"drive_id": "other", "path_on_host": disk,
                                                    "is_root_device": False, "is_read_only": False})
    check("PUT /drives with a mismatched id is refused", code == 400, f"{code} {data}")
    code, data = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    check("InstanceStart", code == 204, f"{code} {data}")
    check("guest ready", wait_for(lambda: "tiny: ready" in read(log)), read(log)[-200:])
    check("guest ticking", ticking(log))
    code, data = curl(sock, "GET", "/")
    check("GET / running", data.get("state") == "Running", data)
    code, data = curl(sock, "PUT", "/boot-source", {"kernel_image_path": TINY})
    check("boot source refused after start", code == 400, f"{code} {data}")

    check("PATCH /vm Paused", curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204)
    check("paused guest does not tick", stalled(log))
    snap, mem = os.path.join(tmp, "snap.state"), os.path.join(tmp, "snap.mem")
    code, data = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": snap, "mem_file_path": mem})
    check("snapshot create", code == 204 and os.path.exists(snap) and os.path.exists(mem), f"{code} {data}")
    if os.path.exists(mem):
        st = os.stat(mem)
        check("memory file is sparse", st.st_size == 64 << 20 and st.st_blocks * 512 < st.st_size // 4,
              f"size {st.st_size} allocated {st.st_blocks * 512}")
    if shutil.which("fdtdump") and os.path.exists(snap):
        dump = subprocess.run(["fdtdump", snap], capture_output=True, text=True).stdout
        check("fdtdump shows the state file", "fvm-state" in dump and "vcpu@0" in dump, dump[:300])

    code, data = curl(sock, "POST", "/fork", {"count": 3})
    clones = data.get("clones", []) if isinstance(data, dict) else []
    check("POST /fork", code == 200 and len(clones) == 3, f"{code} {data}")
    for c in clones:
        csock = c["api_sock"]
        clog = csock[:-len(".sock")] + ".log"
        check(f"clone {c['name']} serves its API", wait_for(lambda: os.path.exists(csock)), csock)
        code, d = curl(csock, "GET", "/")
        check(f"clone {c['name']} is running", code == 200 and d.get("state") == "Running", f"{code} {d}")
        check(f"clone {c['name']} guest runs on from the template", ticking(clog) and "tiny: ready" not in read(clog),
              read(clog)[-100:])
    code, data = curl(sock, "GET", "/clones")
    check("GET /clones", code == 200 and len(data.get("clones", [])) == 3, f"{code} {data}")
    disk = os.path.realpath(os.path.join(tmp, "data.raw"))
    for c in clones:
        overlay = os.path.join(tmp, f"{c['name']}-data.qcow2")
        info = qemu_img_info(overlay)
        check(f"clone {c['name']} writes its own overlay over the template's image",
              info.get("backing-filename") == disk and info.get("format") == "qcow2", info)
        code, d = curl(c["api_sock"], "GET", "/vm/config")
        paths = [dr.get("path_on_host") for dr in d.get("drives", [])] if isinstance(d, dict) else []
        check(f"clone {c['name']} config names its overlay", paths == [overlay], f"{code} {d}")
    check("template stays paused while clones run", stalled(log))
    if clones:
        csock = clones[0]["api_sock"]
        clog = csock[:-len(".sock")] + ".log"
        check("clone pauses", curl(csock, "PATCH", "/vm", {"state": "Paused"})[0] == 204 and stalled(clog))
    for c in clones:
        os.kill(c["pid"], signal.SIGTERM)
    check("clones stop on SIGTERM", wait_for(lambda: curl(sock, "GET", "/clones")[1].get("clones") == []),
          curl(sock, "GET", "/clones"))
    check("PATCH /vm Resumed", curl(sock, "PATCH", "/vm", {"state": "Resumed"})[0] == 204)
    check("template ticks again", ticking(log))
    info = qemu_img_info(os.path.join(tmp, "t-gen3-data.qcow2"))
    check("the resumed template writes a new overlay, not the image its clones read",
          info.get("backing-filename") == disk, info)
    code, text = curl(sock, "GET", "/metrics")
    check("metrics", code == 200 and "fvm_forks_total 3" in text and "fvm_vcpu_exits_total" in text, text[:300])
    check("template exits 0 on SIGTERM", stop(proc) == 0, proc.stderr.read())
    check("socket removed on exit", not os.path.exists(sock))
    return snap, mem


def vsock_handshake(path, line, timeout=6.0):
    """Send a CONNECT line to a vsock socket; return (answer, seconds until it closed)."""
    import socket
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line)
        answer = b""
        try:
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            return answer, None
    return answer, time.monotonic() - t0


def host_devices(tmp):
    """Network, vsock and entropy over the API; the tiny guest has no drivers for them."""
    sock, log = os.path.join(tmp, "h.sock"), os.path.join(tmp, "h.log")
    vsock = os.path.join(tmp, "h.vsock")
    have_tun = os.path.exists("/dev/net/tun")
    proc = start_api(sock, log)
    curl(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    curl(sock, "PUT", "/boot-source", {"kernel_image_path": TINY})
    code, data = curl(sock, "PUT", "/vsock", {"guest_cid": 2, "uds_path": vsock})
    check("PUT /vsock refuses the host's CID", code == 400, f"{code} {data}")
    code, data = curl(sock, "PUT", "/vsock", {"guest_cid": 3, "uds_path": vsock})
    check("PUT /vsock", code == 204, f"{code} {data}")
    check("PUT /entropy", curl(sock, "PUT", "/entropy", {})[0] == 204)
    code, data = curl(sock, "PUT", "/network-interfaces/eth0",
                      {"iface_id": "eth0", "host_dev_name": "bad name"})
    check("PUT /network-interfaces refuses a bad TAP name", code == 400, f"{code} {data}")
    if have_tun:
        code, data = curl(sock, "PUT", "/network-interfaces/eth0",
                          {"iface_id": "eth0", "host_dev_name": "fvmlive0",
                           "guest_mac": "06:00:00:00:00:07", "guest_ip": "10.9.0.2/24"})
        check("PUT /network-interfaces", code == 204, f"{code} {data}")
    code, data = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    check("InstanceStart with vsock, entropy (and a TAP)", code == 204, f"{code} {data}")
    check("guest ready beside the new devices", wait_for(lambda: "tiny: ready" in read(log)), read(log)[-200:])
    code, data = curl(sock, "GET", "/vm/config")
    check("GET /vm/config lists vsock and entropy",
          code == 200 and data.get("vsock", {}).get("uds_path") == vsock and data.get("entropy") == {},
          f"{code} {data}")
    if have_tun:
        nets = data.get("network-interfaces", []) if isinstance(data, dict) else []
        check("GET /vm/config lists the interface with fvm's fields",
              nets and nets[0].get("guest_ip") == "10.9.0.2/24", nets)
        link = subprocess.run(["ip", "link", "show", "fvmlive0"], capture_output=True, text=True)
        check("fvm created the TAP", link.returncode == 0,
              link.stdout + link.stderr)
    check("the vsock socket listens", os.path.exists(vsock))
    answer, took = vsock_handshake(vsock, b"CONNECT 52\n")
    check("CONNECT to a guest without a vsock driver: closed without OK, in bounded time",
          answer == b"" and took is not None and took < 5.0, f"{answer!r} after {took}")
    answer, took = vsock_handshake(vsock, b"HELLO THERE\n")
    check("a garbage handshake is closed at once", answer == b"" and took is not None and took < 1.0,
          f"{answer!r} after {took}")
    code, data = curl(sock, "POST", "/exec", {"argv": ["true"], "timeout_ms": 1000})
    check("POST /exec without a guest agent fails with a reason, not 501",
          code >= 400 and code != 501 and "agent" in data.get("fault_message", ""), f"{code} {data}")
    check("PATCH /vm Paused", curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204)
    code, data = curl(sock, "POST", "/fork", {"count": 1})
    clones = data.get("clones", []) if isinstance(data, dict) else []
    check("fork a VM with vsock and a TAP", code == 200 and len(clones) == 1, f"{code} {data}")
    for c in clones:
        cvsock = os.path.join(tmp, c["name"] + ".vsock")
        check(f"clone {c['name']} listens on its own vsock socket", wait_for(lambda: os.path.exists(cvsock)),
              os.listdir(tmp))
        code, d = curl(c["api_sock"], "GET", "/vm/config")
        check(f"clone {c['name']} config names its vsock socket",
              code == 200 and d.get("vsock", {}).get("uds_path") == cvsock, f"{code} {d}")
        os.kill(c["pid"], signal.SIGTERM)
    check("the template still listens on its own vsock socket", os.path.exists(vsock))
    code, data = curl(sock, "POST", "/invoke", {"argv": ["true"], "timeout_ms": 1500})
    check("POST /invoke without a guest agent fails with a reason", code >= 400 and code != 501
          and "agent" in data.get("fault_message", ""), f"{code} {data}")
    check("exits 0 on SIGTERM", stop(proc) == 0, proc.stderr.read())
    check("the vsock socket is removed on exit", not os.path.exists(vsock))
    start = start_api(os.path.join(tmp, "n.sock"), os.path.join(tmp, "n.log"))
    code, data = curl(os.path.join(tmp, "n.sock"), "POST", "/exec", {"argv": ["true"]})
    check("POST /exec before start is refused", code == 400, f"{code} {data}")
    stop(start)


def restore(tmp, snap, mem):
    sock, log = os.path.join(tmp, "r.sock"), os.path.join(tmp, "r.log")
    proc = start_api(sock, log)
    code, data = curl(sock, "PUT", "/snapshot/load", {"snapshot_path": snap, "mem_file_path": mem})
    check("restore without the snapshotted VM's drive is refused",
          code == 400 and "virtio" in data.get("fault_message", ""), f"{code} {data}")
    code, data = curl(sock, "PUT", "/drives/data", {"drive_id": "data", "path_on_host": os.path.join(tmp, "data.raw"),
                                                    "is_root_device": False, "is_read_only": False})
    check("PUT /drives before the load", code == 204, f"{code} {data}")
    bad = os.path.join(tmp, "bad.state")
    with open(snap, "rb") as f:
        blob = bytearray(f.read())
    blob[len(blob) // 2] ^= 0x01
    with open(bad, "wb") as f:
        f.write(blob)
    code, data = curl(sock, "PUT", "/snapshot/load", {"snapshot_path": bad, "mem_file_path": mem})
    check("tampered snapshot refused", code == 400 and "fault_message" in data, f"{code} {data}")
    check("fvm still serves after a bad load", curl(sock, "GET", "/")[1].get("state") == "Not started")
    code, data = curl(sock, "PUT", "/snapshot/load",
                      {"snapshot_path": snap, "mem_file_path": mem, "resume_vm": True})
    check("snapshot load", code == 204, f"{code} {data}")
    check("restored guest continues (ticks, no reboot)", ticking(log) and "tiny: ready" not in read(log),
          read(log)[-100:])
    check("restored VM exits 0 on SIGTERM", stop(proc) == 0)


def fvmctl(tmp):
    env = dict(os.environ, FVM_RUNTIME_DIR=os.path.join(tmp, "run"))
    os.makedirs(env["FVM_RUNTIME_DIR"])

    def ctl(*args):
        return subprocess.run([FVMCTL, *args], capture_output=True, text=True, env=env, timeout=60)

    r = ctl("run", "web", "--kernel", TINY, "--mem", "64M")
    check("fvmctl run", r.returncode == 0, r.stderr)
    log = os.path.join(env["FVM_RUNTIME_DIR"], "web.log")
    check("fvmctl run: guest ready", wait_for(lambda: "tiny: ready" in read(log)), read(log))
    r = ctl("--json", "ls")
    check("fvmctl ls", r.returncode == 0 and "web" in r.stdout, r.stdout + r.stderr)
    r = ctl("fork", "web", "2")
    check("fvmctl fork (pauses a running template)", r.returncode == 0, r.stdout + r.stderr)
    r = ctl("--json", "ls")
    names = [v.get("name") for v in json.loads(r.stdout)] if r.returncode == 0 else []
    check("fvmctl ls shows the clones", {"web", "web-1", "web-2"} <= set(names), r.stdout)
    r = ctl("--json", "info", "web-1")
    check("fvmctl info of a clone", r.returncode == 0 and "Running" in r.stdout, r.stdout + r.stderr)
    for name in ("web-1", "web-2", "web"):
        r = ctl("stop", name)
        check(f"fvmctl stop {name}", r.returncode == 0, r.stderr)
    r = ctl("info", "web")
    check("fvmctl info of a stopped VM says so", r.returncode != 0, r.stdout)


def main():
    tmp = tempfile.mkdtemp(prefix="fvm-live-", dir="/tmp")
    try:
        three_ways(tmp)
        snap, mem = api_life_cycle(tmp)
        restore(tmp, snap, mem)
        host_devices(tmp)
        fvmctl(tmp)
    finally:
        subprocess.run(["pkill", "-f", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
