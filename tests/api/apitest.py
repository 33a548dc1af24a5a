# SPDX-License-Identifier: MIT
"""Helpers for the API tests: the test server, curl, and the OpenAPI file.

Standard library only. Requests go through the real curl binary with
--unix-socket, as a client would send them.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

if shutil.which("curl") is None:
    print("skipped: the API tests drive the server with curl, which is not installed")
    sys.exit(77)

SERVER = os.environ.get("API_TEST_SERVER", "api-test-server")
# Servers that exited badly or logged a sanitizer report; Results counts them.
server_problems = []
SPEC = os.environ.get("OPENAPI_YAML", os.path.join(os.path.dirname(__file__), "..", "..", "api", "openapi.yaml"))


# ---- a reader for the YAML subset api/openapi.yaml keeps to ----------------
#
# Block mappings and block lists by indentation, one-line scalars (plain,
# 'single' or "double" quoted) and flow lists of scalars ([a, b]). Anything
# else is an error, so the spec cannot drift into YAML this reader would
# misread.

def _scalar(text):
    text = text.strip()
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ValueError("unterminated quote: " + text)
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError("flow list must close on its line: " + text)
        inner = text[1:-1].strip()
        return [_scalar(x) for x in inner.split(",")] if inner else []
    if text.startswith("{"):
        if text != "{}":
            raise ValueError("only {} is allowed as a flow mapping: " + text)
        return {}
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if text[0] in "&*!|>%@`":
        raise ValueError("unsupported YAML: " + text)
    return text


def _split_key(content):
    # "key: value" or "key:"; keys may be quoted.
    m = re.match(r"""^('[^']*'|"[^"]*"|[^:#'"][^:]*?)\s*:(\s+(.*))?$""", content)
    if not m:
        return None
    key = _scalar(m.group(1))
    return str(key), (m.group(3) if m.group(2) else None)


def load_yaml(path):
    lines = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError(f"{path}:{n}: tab in indentation")
            indent = len(raw) - len(raw.lstrip(" "))
            lines.append((indent, raw.strip(), n))

    def block(i, indent):
        if lines[i][1].startswith("- ") or lines[i][1] == "-":
            return seq(i, indent)
        return mapping(i, indent)

    def mapping(i, indent):
        out = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            kv = _split_key(lines[i][1])
            if kv is None:
                raise ValueError(f"{path}:{lines[i][2]}: expected 'key: value'")
            key, val = kv
            if key in out:
                raise ValueError(f"{path}:{lines[i][2]}: duplicate key {key}")
            i += 1
            if val is not None:
                out[key] = _scalar(val)
            elif i < len(lines) and lines[i][0] > indent:
                out[key], i = block(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                out[key], i = seq(i, indent)
            else:
                out[key] = None
        return out, i

    def seq(i, indent):
        out = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            rest = lines[i][1][2:].strip()
            if _split_key(rest) is not None:
                # "- key: value" opens a mapping indented past the dash.
                lines[i] = (indent + 2, rest, lines[i][2])
                item, i = mapping(i, indent + 2)
            else:
                item, i = _scalar(rest), i + 1
            out.append(item)
        return out, i

    doc, i = block(0, lines[0][0])
    if i != len(lines):
        raise ValueError(f"{path}:{lines[i][2]}: unexpected indentation")
    return doc


# ---- the spec ---------------------------------------------------------------

METHODS = ("get", "put", "patch", "post", "delete")


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def spec_operations(spec):
    """{(METHOD, '/path/{x}'): operation}"""
    ops = {}
    for path, item in spec["paths"].items():
        for m, op in item.items():
            if m in METHODS:
                ops[(m.upper(), path)] = op
    return ops


def template_for(spec, path):
    """The spec path template that a concrete path matches, or None."""
    path = path.split("?")[0]
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for tmpl in spec["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(tmpl)) + "$"
        if re.match(rx, path):
            return tmpl
    return None


def check_response(spec, method, path, resp):
    """Problems (strings) with resp against the spec; [] when it conforms."""
    tmpl = template_for(spec, path)
    if tmpl is None or (method, tmpl) not in spec_operations(spec):
        # No operation: the spec's info says 400 (unknown path) or 405.
        want = 405 if tmpl else 400
        if resp.status != want or not resp.ctype.startswith("application/json"):
            return [f"{method} {path}: no such operation, expected {want} JSON, got {resp.status} {resp.ctype}"]
        return []
    op = spec_operations(spec)[(method, tmpl)]
    declared = op["responses"]
    r = declared.get(str(resp.status))
    if r is None:
        return [f"{method} {tmpl}: status {resp.status} is not declared (declared: {sorted(declared)})"]
    r = resolve(spec, r)
    content = r.get("content")
    if not content:
        if resp.body:
            return [f"{method} {tmpl}: {resp.status} declares no body but got {len(resp.body)} bytes"]
        return []
    ctype = resp.ctype.split(";")[0].strip()
    if ctype not in content:
        return [f"{method} {tmpl}: {resp.status} content type {resp.ctype!r} not in {sorted(content)}"]
    schema = resolve(spec, content[ctype].get("schema", {}))
    if ctype == "application/json":
        try:
            doc = json.loads(resp.body)
        except ValueError:
            return [f"{method} {tmpl}: {resp.status} body is not JSON"]
        missing = [k for k in schema.get("required", []) if not isinstance(doc, dict) or k not in doc]
        if missing:
            return [f"{method} {tmpl}: {resp.status} body lacks required {missing}"]
    return []


# ---- talking to the server ---------------------------------------------------

class Response:
    def __init__(self, status, ctype, headers, body):
        self.status, self.ctype, self.headers, self.body = status, ctype, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.ctype} {self.body[:200]!r}>"


def request(sock, method, path, body=None, headers=(), timeout=20, extra=()):
    """One request with curl; body: None, str/bytes (sent as is) or a JSON value."""
    with tempfile.TemporaryDirectory() as tmp:
        hfile, bfile = os.path.join(tmp, "h"), os.path.join(tmp, "b")
        cmd = ["curl", "-s", "-S", "--max-time", str(timeout), "--unix-socket", sock,
               "-X", method, "-D", hfile, "-o", bfile, "-H", "Expect:"]
        for h in headers:
            cmd += ["-H", h]
        if body is not None:
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            dfile = os.path.join(tmp, "d")
            with open(dfile, "wb") as f:
                f.write(body)
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@" + dfile]
        cmd += list(extra) + ["http://localhost" + path]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
        if p.returncode != 0:
            raise RuntimeError(f"curl {method} {path} failed ({p.returncode}): {p.stderr.decode().strip()}")
        with open(hfile, "rb") as f:
            raw = f.read().decode("latin-1")
        data = b""
        if os.path.exists(bfile):
            with open(bfile, "rb") as f:
                data = f.read()
    # The last header block is the final answer (a 100 Continue may precede it).
    blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
    head = blocks[-1].split("\r\n")
    status = int(head[0].split()[1])
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return Response(status, hdrs.get("content-type", ""), hdrs, data.decode("utf-8", "replace"))


class Server:
    """api-test-server on a socket in a fresh directory; a context manager."""

    def __init__(self, state="not-started", null_ops=False, name="vm", directory=None):
        self.tmp = None
        if directory is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="fvm-api-")
            directory = self.tmp.name
        self.dir = directory
        self.sock = os.path.join(directory, name + ".sock")
        self.record = os.path.join(directory, name + ".record")
        self.log = os.path.join(directory, name + ".out")
        args = [SERVER, "--api-sock", self.sock, "--state", state, "--record", self.record]
        if null_ops:
            args.append("--null-ops")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.time() + 10
        while not self._ready():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("api-test-server did not start: " + open(self.log).read())
            time.sleep(0.01)

    def _ready(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def req(self, method, path, body=None, **kw):
        return request(self.sock, method, path, body, **kw)

    def records(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return f.read().splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            server_problems.append(f"{self.sock}: the server did not stop on SIGTERM")
        self.logf.close()
        with open(self.log, errors="replace") as f:
            out = f.read()
        if self.proc.returncode != 0 or "Sanitizer" in out or "runtime error" in out:
            server_problems.append(f"{self.sock}: exit {self.proc.returncode}: {out[-2000:]}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if self.tmp:
            self.tmp.cleanup()


class Results:
    """Counts checks and prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f"\n      {detail}" if detail else ""), flush=True)
        return ok

    def finish(self):
        for p in server_problems:
            self.check(False, "server exited cleanly", p)
        server_problems.clear()
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def _subset(want, got):
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    return want == got and type(want) is type(got)


def run_case(server, case):
    """Send one case from api_cases; returns (response, [problems])."""
    before = len(server.records())
    resp = server.req(case["method"], case["path"], case["body"])
    problems = []
    if resp.status != case["status"]:
        problems.append(f"status {resp.status}, expected {case['status']}: {resp.body[:300]}")
    if resp.status >= 400:
        try:
            fault = resp.json()["fault_message"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"error without a JSON fault_message: {resp.body[:200]!r}")
            fault = ""
        if case["fault"] and case["fault"] not in fault:
            problems.append(f"fault {fault!r} lacks {case['fault']!r}")
    elif case["fault"]:
        problems.append("expected a fault, got success")
    if case["json"] is not None:
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if not _subset(case["json"], doc):
            problems.append(f"answer {resp.body[:300]} does not contain {case['json']}")
    if case["check"] is not None:
        try:
            ok = case["check"](resp)
        except Exception as e:  # a check that throws is a failed check
            ok = False
            problems.append(f"check raised {e!r}")
        if not ok:
            problems.append(f"check failed on {resp.body[:300]}")
    after = server.records()
    if case["record"] is not None:
        new = after[before:]
        if not any(case["record"] in line for line in new):
            problems.append(f"backend recorded {new}, expected a line with {case['record']!r}")
    elif resp.status >= 400 and len(after) != before and case["status"] == 400 and "fake:" not in (case["fault"] or ""):
        # A refused request must not have reached the backend.
        problems.append(f"refused request reached the backend: {after[before:]}")
    return resp, problems
