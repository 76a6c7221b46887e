#!/usr/bin/env python3
"""The model checker (model_check.py) in front of an emulator: every HTTP
request is checked against its operation's botocore model before the
emulator sees it; one AWS's model refuses is answered as AWS would (HTTP
400, the protocol's validation error, message "jitr model check: ...").

`asgi(app)` wraps ministack's ASGI app (scripts/ministack_loopback.py),
`wsgi(app)` moto server's WSGI app (tests/moto/jitr_moto.py).

Settings (environment):
  JITR_MODEL_CHECK      `enforce` (default), `report` (log, never refuse) or `off`
  JITR_MODEL_CHECK_DIR  where to record: `requests-<pid>.jsonl` (one line a
                        request) and `violations.log` (every refused request);
                        nothing is recorded without it

`python3 model_check_server.py summary DIR` adds up the records of every
process of a run (writes DIR/summary.json, prints one line).
"""
import gzip
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_check  # noqa: E402

MODE = os.environ.get("JITR_MODEL_CHECK", "enforce")
_LOCK = threading.Lock()
_FILES = {}


def _record_dir():
    return os.environ.get("JITR_MODEL_CHECK_DIR")


def _append(name, text):
    """Appends `text` to DIR/name (one write of whole lines: processes share the files)."""
    d = _record_dir()
    if not d:
        return
    with _LOCK:
        f = _FILES.get(name)
        if f is None:
            os.makedirs(d, exist_ok=True)
            f = _FILES[name] = open(os.path.join(d, name), "a", encoding="utf-8")
        f.write(text)
        f.flush()


def inspect(server, method, raw_path, query_string, headers, body):
    """Checks and records one request; returns the error answer (status,
    headers, body) when AWS would refuse it and MODE is `enforce`, else None."""
    if MODE == "off":
        return None
    if headers.get("content-encoding", "").strip() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            pass
    try:
        res = model_check.check(method, raw_path, query_string, headers, body)
        error = None
    except Exception:  # a checker bug must not take the emulator down: record it
        res, error = model_check.Result(), traceback.format_exc(limit=3)
        res.unidentified = f"checker error on {method} {raw_path}"
    line = {"server": server, "op": res.name, "unidentified": res.unidentified,
            "violations": res.violations, "unknown": sorted(set(res.unknown)),
            "skipped_patterns": sorted(set(res.skipped_patterns)), "checker_error": error}
    _append(f"requests-{os.getpid()}.jsonl", json.dumps(line) + "\n")
    if not res.violations:
        return None
    message = (f"jitr model check: {len(res.violations)} validation error"
               f"{'s' if len(res.violations) > 1 else ''} detected in {res.name}: " + "; ".join(res.violations))
    shown = body[:2000].decode("utf-8", "replace")
    _append("violations.log", f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {server} {MODE} {message}\n"
            f"    request: {method} {raw_path}{'?' + query_string if query_string else ''} "
            f"x-amz-target={headers.get('x-amz-target', '')} user-agent={headers.get('user-agent', '')}\n"
            f"    body: {shown}\n")
    if MODE != "enforce":
        return None
    return error_answer(res, message)


def error_answer(res, message):
    """The validation error AWS answers in the request's protocol."""
    rid = str(uuid.uuid4())
    m = model_check.model(res.service)
    if res.protocol == "query":
        text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>"
               f"<Message>{text}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        return 400, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, xml.encode()
    errors = {e["shape"] for e in m.operations[res.operation].get("errors", [])}
    code = next((c for c in ("ValidationException", "InvalidRequestException",
                             "InvalidParameterValueException", "InvalidParameterException") if c in errors),
                "ValidationException")
    body = json.dumps({"__type": code, "message": message}).encode()
    if res.protocol == "json":
        ctype = f"application/x-amz-json-{m.meta.get('jsonVersion', '1.0')}"
        return 400, {"Content-Type": ctype, "x-amzn-RequestId": rid}, body
    return 400, {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": rid}, body


def asgi(app, server="ministack"):
    """`app` with every HTTP request checked first (the body is read, then replayed)."""

    async def checked(scope, receive, send):
        if scope["type"] != "http" or MODE == "off":
            return await app(scope, receive, send)
        chunks, first = [], None
        while True:
            message = await receive()
            if message.get("type") != "http.request":
                first = message
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = {}
        for name, value in scope.get("headers", []):
            key, text = name.decode("latin-1").lower(), value.decode("utf-8", "replace")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raw_path = (scope.get("raw_path") or quote(scope["path"]).encode()).decode("latin-1")
        answer = inspect(server, scope["method"], raw_path, scope.get("query_string", b"").decode("latin-1"),
                         headers, body)
        if answer is not None:
            status, hdrs, data = answer
            hdrs = [(k.encode(), v.encode()) for k, v in hdrs.items()] + [(b"content-length", str(len(data)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": hdrs})
            await send({"type": "http.response.body", "body": data})
            return None
        pending = [first or {"type": "http.request", "body": body, "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        return await app(scope, replay, send)

    return checked


def wsgi(app, server="moto"):
    """`app` with every request checked first (the body is read, then replayed)."""

    def checked(environ, start_response):
        if MODE == "off":
            return app(environ, start_response)
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = stream.read(int(length))
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "") or environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        raw_path = raw.split("?", 1)[0] if raw else quote(environ.get("PATH_INFO", "/"))
        answer = inspect(server, environ["REQUEST_METHOD"], raw_path, environ.get("QUERY_STRING", ""), headers, body)
        if answer is None:
            return app(environ, start_response)
        status, hdrs, data = answer
        start_response(f"{status} Bad Request", list(hdrs.items()) + [("Content-Length", str(len(data)))])
        return [data]

    return checked


def summary(d):
    """Totals over every process's records in directory `d`."""
    requests, checked, refused = 0, 0, 0
    per_op, unidentified, unknown, skipped, errors, servers = {}, {}, {}, {}, [], {}
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if not (name.startswith("requests-") and name.endswith(".jsonl")):
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            for text in f:
                try:
                    line = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a killed process
                requests += 1
                servers[line["server"]] = servers.get(line["server"], 0) + 1
                if line.get("checker_error"):
                    errors.append(line["checker_error"])
                if line["op"]:
                    checked += 1
                    per_op[line["op"]] = per_op.get(line["op"], 0) + 1
                    refused += bool(line["violations"])
                else:
                    why = line["unidentified"]
                    unidentified[why] = unidentified.get(why, 0) + 1
                for u in line.get("unknown", []):
                    key = f"{line['op']}: {u}"
                    unknown[key] = unknown.get(key, 0) + 1
                for p in line.get("skipped_patterns", []):
                    skipped[p] = skipped.get(p, 0) + 1
    data = model_check.data_dir()
    return {"botocore": model_check.botocore_version(data), "requests": requests, "checked": checked,
            "operations": len(per_op), "refused": refused, "by_server": servers,
            "per_operation": dict(sorted(per_op.items())), "unidentified": unidentified,
            "unknown_members": unknown, "skipped_patterns": skipped, "checker_errors": errors}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "summary":
        sys.exit("usage: model_check_server.py summary DIR")
    totals = summary(sys.argv[2])
    os.makedirs(sys.argv[2], exist_ok=True)
    with open(os.path.join(sys.argv[2], "summary.json"), "w", encoding="utf-8") as out:
        json.dump(totals, out, indent=1)
    print(f"model check (botocore {totals['botocore']}): {totals['requests']} requests, {totals['checked']} checked "
          f"against {totals['operations']} operations, {totals['refused']} refused, "
          f"{sum(totals['unidentified'].values())} unidentified, {len(totals['skipped_patterns'])} patterns skipped, "
          f"{len(totals['checker_errors'])} checker errors ({sys.argv[2]}/summary.json, violations.log)")
    # A refused request already failed the test that sent it; a checker error
    # means a request went unchecked. Either fails the run.
    if totals["refused"] or totals["checker_errors"]:
        sys.exit(f"model check: {totals['refused']} request(s) AWS's models refuse, "
                 f"{len(totals['checker_errors'])} checker error(s): see {sys.argv[2]}/violations.log and summary.json")
