#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""api/openapi.yaml against the server:
 - the spec's operations and the server's route table are the same set;
 - every answer to every case in api_cases.py has a status code, content
   type and required fields the spec declares for that operation;
 - every operation in the spec was exercised, with a success among them."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_cases  # noqa: E402
from apitest import (SERVER, SPEC, Results, Server, check_response, load_yaml,  # noqa: E402
                     run_case, spec_operations, template_for)

res = Results()


def main():
    spec = load_yaml(SPEC)
    res.check(str(spec.get("openapi", "")).startswith("3."), "the spec is OpenAPI 3")
    ops = spec_operations(spec)

    out = subprocess.run([SERVER, "--list-routes"], capture_output=True, text=True, check=True).stdout
    routes = {tuple(line.split(" ", 1)) for line in out.splitlines() if line}
    for r in sorted(routes - set(ops)):
        res.check(False, f"route {r[0]} {r[1]} is served but not in the spec")
    for o in sorted(set(ops) - routes):
        res.check(False, f"spec operation {o[0]} {o[1]} is not served")
    res.check(routes == set(ops), f"route table and spec agree ({len(routes)} operations)")

    for path, item in spec["paths"].items():
        for m, op in item.items():
            if m in ("get", "put", "patch", "post"):
                res.check(bool(op.get("operationId")) and bool(op.get("responses")),
                          f"{m.upper()} {path} has an operationId and responses")

    seen, succeeded = set(), set()
    for group, server_args, cases in api_cases.GROUPS:
        with Server(**server_args) as srv:
            for case in cases:
                resp, _ = run_case(srv, case)
                tmpl = template_for(spec, case["path"])
                key = (case["method"], tmpl)
                if key in ops:
                    seen.add(key)
                    if resp.status < 300:
                        succeeded.add(key)
                problems = check_response(spec, case["method"], case["path"], resp)
                res.check(not problems, f"[{group}] {case['name']} conforms", "; ".join(problems))
    for o in sorted(ops):
        res.check(o in seen, f"{o[0]} {o[1]} is exercised by a test case")
        res.check(o in succeeded, f"{o[0]} {o[1]} has a successful test case")
    return res.finish()


if __name__ == "__main__":
    sys.exit(main())
