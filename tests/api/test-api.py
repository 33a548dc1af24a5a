#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API server over its socket, driven by curl: every case in
api_cases.py, then what a table cannot say (body limits, concurrency, a
stalled client, the socket's mode and life cycle)."""
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_cases  # noqa: E402
from apitest import Results, Server, request, run_case  # noqa: E402

res = Results()


def table():
    for group, server_args, cases in api_cases.GROUPS:
        with Server(**server_args) as srv:
            for case in cases:
                try:
                    _, problems = run_case(srv, case)
                except Exception as e:
                    problems = [f"raised {e!r}"]
                res.check(not problems, f"[{group}] {case['name']}: {case['method']} {case['path']}",
                          "; ".join(problems))
            if cases is api_cases.PRE_BOOT:
                # SendCtrlAltDel was the last case: the fake VMM exits by itself.
                try:
                    srv.proc.wait(timeout=5)
                    res.check(not os.path.exists(srv.sock), "socket removed after the VMM exits")
                except subprocess.TimeoutExpired:
                    res.check(False, "VMM exits after SendCtrlAltDel")


def body_limits():
    with Server(state="not-started") as srv:
        big = '{"kernel_image_path": "' + "a" * (300 * 1024) + '"}'
        r = srv.req("PUT", "/boot-source", big)
        res.check(r.status == 413 and "larger than the limit" in r.json()["fault_message"],
                  "413 for a body over the limit (Content-Length)", repr(r))
        r = srv.req("PUT", "/boot-source", big, headers=["Transfer-Encoding: chunked"])
        res.check(r.status == 413, "413 for a chunked body over the limit", repr(r))
        just = '{"kernel_image_path": "/k", "boot_args": "' + "a" * 4000 + '"}'
        r = srv.req("PUT", "/boot-source", just, headers=["Transfer-Encoding: chunked"])
        res.check(r.status == 204, "a chunked body under the limit is accepted", repr(r))
        r = srv.req("GET", "/")
        res.check(r.status == 200, "the server still serves after a 413", repr(r))


def socket_file():
    with Server(state="not-started") as srv:
        st = os.stat(srv.sock)
        res.check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
                  "socket is mode 0600", oct(st.st_mode))
        leftovers = [f for f in os.listdir(srv.dir) if ".tmp" in f]
        res.check(not leftovers, "no temporary socket left behind", str(leftovers))
        # A second server must not steal a live socket.
        p = subprocess.run([os.environ.get("API_TEST_SERVER", "api-test-server"), "--api-sock", srv.sock],
                           capture_output=True, text=True, timeout=10)
        res.check(p.returncode != 0 and "Address already in use" in p.stderr,
                  "a live socket is not taken over", p.stderr)
        res.check(srv.req("GET", "/").status == 200, "the first server still answers")
        d = srv.dir
    # A stale socket (nobody listening) is replaced.
    stale = os.path.join(d, "stale.sock")
    os.makedirs(d, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    with Server(state="running", name="stale", directory=d) as srv:
        res.check(srv.req("GET", "/").json()["id"] == "stale", "a stale socket is replaced")
    res.check(not os.path.exists(stale), "socket removed on stop")
    shutil.rmtree(d, ignore_errors=True)


def concurrency():
    with Server(state="running") as srv:
        # A slow request (the fake guest sleeps 2 s) must not hold up others.
        slow = {}

        def run_slow():
            t = time.time()
            slow["r"] = srv.req("POST", "/exec", {"argv": ["sleep", "2000"]})
            slow["t"] = time.time() - t

        th = threading.Thread(target=run_slow)
        th.start()
        time.sleep(0.2)
        times, errors = [], []

        def quick():
            t = time.time()
            try:
                r = srv.req("GET", "/")
                if r.status != 200:
                    errors.append(r)
            except Exception as e:
                errors.append(e)
            times.append(time.time() - t)

        clients = [threading.Thread(target=quick) for _ in range(16)]
        t0 = time.time()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        wall = time.time() - t0
        th.join()
        res.check(not errors and len(times) == 16, "16 concurrent clients all answered", str(errors[:3]))
        res.check(wall < 1.5, f"concurrent clients finish while a slow exec runs ({wall:.2f}s)")
        res.check(slow["r"].status == 200 and slow["t"] >= 1.9, "the slow exec completed", repr(slow))

        # Serial calls still run: a pause while exec is in flight is not blocked by it.
        th = threading.Thread(target=run_slow)
        th.start()
        time.sleep(0.2)
        t = time.time()
        r = srv.req("PATCH", "/vm", {"state": "Paused"})
        res.check(r.status == 204 and time.time() - t < 1.0, "a serial op is not blocked by a running exec")
        th.join()
        srv.req("PATCH", "/vm", {"state": "Resumed"})

        # Several requests on one kept-alive connection.
        p = subprocess.run(["curl", "-s", "--unix-socket", srv.sock, "-w", "\\n=%{http_code} %{num_connects}\\n",
                            "http://localhost/", "http://localhost/version"],
                           capture_output=True, text=True, timeout=10)
        lines = [x for x in p.stdout.splitlines() if x.startswith("=")]
        res.check(lines == ["=200 1", "=200 0"], "keep-alive: two requests, one connection", p.stdout)


def stalled_client():
    with Server(state="running") as srv:
        stalled = []
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(srv.sock)
            # Half a request: headers promise a body that never comes.
            s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"vcpu")
            stalled.append(s)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(srv.sock)
        s.sendall(b"GET / HT")  # not even a request line
        stalled.append(s)
        t = time.time()
        r = srv.req("GET", "/", timeout=5)
        el = time.time() - t
        res.check(r.status == 200 and el < 1.0, f"stalled clients do not block another client ({el:.3f}s)")
        r = srv.req("PATCH", "/vm", {"state": "Paused"}, timeout=5)
        res.check(r.status == 204, "stalled clients do not block a serial op")
        for s in stalled:
            s.close()
        # Garbage instead of HTTP gets an error answer, and the server lives on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(srv.sock)
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        s.close()
        res.check(data == b"" or data.startswith(b"HTTP/1.1 400"), "garbage gets 400 or a close", repr(data[:60]))
        res.check(srv.req("GET", "/").status == 200, "the server still serves after garbage")


def main():
    table()
    body_limits()
    socket_file()
    concurrency()
    stalled_client()
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
