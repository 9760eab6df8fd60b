#!/usr/bin/env python3
"""A faultline adapter for etcd 3.4, through its v3 JSON gateway (standard library only).

faultline starts one copy of this program per client process and talks to it in JSON Lines
(docs/adapter-protocol.md): one request per line on stdin, one reply per line on stdout.

    {"id":7,"f":"write","key":"k1","value":3,"node":"n1"}
    {"id":7,"type":"ok"}

The node's address comes from FAULTLINE_NODE_ADDR, the request time limit from
FAULTLINE_TIMEOUT_MS, the target option `reads` from FAULTLINE_OPTION_READS.

Outcomes follow faultline's rule: `fail` only when the operation certainly did not take
effect (the connection was refused before anything was sent, etcd refused before
proposing, a compare that failed, any error of a read); `info` when it may have.
"""

import base64
import http.client
import json
import os
import socket
import sys

HOST, PORT = os.environ["FAULTLINE_NODE_ADDR"].rsplit(":", 1)
TIMEOUT = int(os.environ.get("FAULTLINE_TIMEOUT_MS", "1500")) / 1000.0
SERIALIZABLE = os.environ.get("FAULTLINE_OPTION_READS") == "serializable"

# Errors etcd returns before it proposes anything: the operation did not take effect.
REFUSED = {
    "etcdserver: no leader",
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "raft proposal dropped",
}

conn = None


class NotSent(Exception):
    """The connection could not be opened: nothing was sent."""


def post(path, body):
    """POSTs JSON to the gateway; returns (status, parsed body or None)."""
    global conn
    if conn is None:
        conn = http.client.HTTPConnection(HOST, int(PORT), timeout=TIMEOUT)
        try:
            conn.connect()
        except OSError as e:
            conn = None
            raise NotSent(str(e))
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    except BaseException:
        conn.close()
        conn = None
        raise
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, None


def b64(text):
    return base64.b64encode(text.encode()).decode()


def handle(req):
    f, key, value = req.get("f"), req.get("key"), req.get("value")
    if f == "role":
        status, doc = post("/v3/maintenance/status", {})
        doc = doc or {}
        me = doc.get("header", {}).get("member_id")
        leader = doc.get("leader")
        if me is None:
            return {"type": "fail", "error": "no status"}
        role = "leader" if leader == me and leader not in (None, "0") else "follower"
        return {"type": "ok", "value": {"role": role, "term": int(doc.get("raftTerm", 0))}}
    if f == "read":
        body = {"key": b64(key)}
        if SERIALIZABLE:
            body["serializable"] = True
        path = "/v3/kv/range"
    elif f == "write":
        path, body = "/v3/kv/put", {"key": b64(key), "value": b64(str(value))}
    elif f == "cas":
        expected, new = value
        path = "/v3/kv/txn"
        body = {
            "compare": [{"key": b64(key), "target": "VALUE", "result": "EQUAL",
                         "value": b64(str(expected))}],
            "success": [{"request_put": {"key": b64(key), "value": b64(str(new))}}],
        }
    else:
        return {"type": "fail", "error": "unknown f %r" % f}

    try:
        status, doc = post(path, body)
    except NotSent as e:
        return {"type": "fail", "error": "connect: %s" % e}
    except socket.timeout:
        return {"type": "fail" if f == "read" else "info", "error": "timeout"}
    except (OSError, http.client.HTTPException) as e:
        return {"type": "fail" if f == "read" else "info", "error": "transport: %s" % e}

    if not isinstance(doc, dict):
        return {"type": "fail" if f == "read" else "info", "error": "unreadable answer (HTTP %d)" % status}
    message = doc.get("error") or doc.get("message")
    if isinstance(message, str):
        definite = f == "read" or doc.get("code") == 3 or message in REFUSED
        return {"type": "fail" if definite else "info", "error": message}
    if status != 200 or not isinstance(doc.get("header"), dict):
        return {"type": "fail" if f == "read" else "info", "error": "unexpected answer (HTTP %d)" % status}
    if f == "read":
        kvs = doc.get("kvs") or []
        if not kvs:
            return {"type": "ok", "value": None}
        try:
            return {"type": "ok", "value": int(base64.b64decode(kvs[0].get("value", "")).decode())}
        except ValueError:
            return {"type": "fail", "error": "a value that is not a number"}
    if f == "write":
        return {"type": "ok"}
    # cas: the gateway leaves `succeeded: false` out.
    if doc.get("succeeded") is True:
        return {"type": "ok"}
    return {"type": "fail", "error": "mismatch"}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            reply = handle(req)
        except Exception as e:  # a bug here must not look like an answer of etcd
            reply = {"type": "info", "error": "adapter error: %r" % e}
        reply["id"] = req.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
