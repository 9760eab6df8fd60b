#!/usr/bin/env python3
"""A faultline adapter for a system that speaks faultline's HTTP protocol
(docs/protocol-http.md), standard library only.

faultline's built-in `http-kv` client does the same job; this adapter exists to measure
what the adapter protocol costs against it (harness/benches/adapter_throughput.sh), and as
a starting point for an adapter of your own (docs/adapter-protocol.md).
"""

import http.client
import json
import os
import socket
import sys

HOST, PORT = os.environ["FAULTLINE_NODE_ADDR"].rsplit(":", 1)
TIMEOUT = int(os.environ.get("FAULTLINE_TIMEOUT_MS", "1500")) / 1000.0
conn = None


class NotSent(Exception):
    pass


def request(method, path, body):
    global conn
    if conn is None:
        conn = http.client.HTTPConnection(HOST, int(PORT), timeout=TIMEOUT)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            conn = None
            raise NotSent(str(e))
    try:
        data = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return json.loads(resp.read())
    except BaseException:
        conn.close()
        conn = None
        raise


def handle(req):
    f, key, value = req.get("f"), req.get("key"), req.get("value")
    try:
        if f == "read":
            answer = request("GET", "/kv/" + key, None)
        elif f == "write":
            answer = request("PUT", "/kv/" + key, {"value": value})
        elif f == "cas":
            answer = request("POST", "/kv/%s/cas" % key, {"expected": value[0], "new": value[1]})
        elif f == "role":
            status = request("GET", "/status", None)
            return {"type": "ok", "value": {"role": status.get("role"), "term": status.get("term", 0)}}
        else:
            return {"type": "fail", "error": "unknown f %r" % f}
    except NotSent as e:
        return {"type": "fail", "error": "connect: %s" % e}
    except socket.timeout:
        return {"type": "info", "error": "timeout"}
    except (OSError, ValueError, http.client.HTTPException) as e:
        return {"type": "info", "error": "transport: %s" % e}
    outcome = answer.get("outcome") if isinstance(answer, dict) else None
    node = answer.get("node") if isinstance(answer, dict) else None
    if outcome == "ok" and (f != "read" or "value" in answer):
        reply = {"type": "ok", "value": answer.get("value")} if f == "read" else {"type": "ok"}
    elif outcome == "fail":
        reply = {"type": "fail", "error": answer.get("error", "fail")}
    else:
        reply = {"type": "info", "error": answer.get("error", "unknown") if isinstance(answer, dict) else "unreadable"}
    if isinstance(node, str):
        reply["node"] = node
    return reply


def main():
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        reply = handle(req)
        reply["id"] = req.get("id")
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
