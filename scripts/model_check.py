#!/usr/bin/env python3
"""AWS's API models as a second oracle: checks one HTTP request against the
botocore model of its operation, the way AWS's front end validates input
before any service code runs (required members, types, enum values, string
lengths and patterns, number ranges, list and map sizes, unions).

Pure: `check(method, raw_path, query, headers, body)` answers a `Result`
(service, operation, violations); serving, counting and the error answer are
in model_check_server.py. The models are botocore's data files
(`botocore/data/<service>/<date>/service-2.json[.gz]`) of the botocore the
ministack venv pins (scripts/deps.sh), or of JITR_BOTOCORE_DATA.

Protocols checked: rest-json (URI labels, query string, headers, JSON body or
payload), json (X-Amz-Target, JSON body) and query (form parameters with the
list/map flattening conventions). rest-xml (S3), CBOR and unsigned requests
are passed through as unidentified, with the reason.

Unknown members are not refused (AWS ignores them in JSON input); they are
reported in `Result.unknown`. A model pattern that Python's `re` cannot
compile after translation from Java's syntax is skipped and reported.
"""
import base64
import glob
import gzip
import json
import os
import re
import sys
from urllib.parse import parse_qs, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from java_regex import java_regex  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_dir():
    """botocore's model directory: JITR_BOTOCORE_DATA, else the ministack venv's."""
    given = os.environ.get("JITR_BOTOCORE_DATA")
    if given:
        return given
    found = sorted(glob.glob(os.path.join(ROOT, ".venv/ministack/lib/python3*/site-packages/botocore/data")))
    if not found:
        raise FileNotFoundError("no botocore models: run `make deps` (.venv/ministack) or set JITR_BOTOCORE_DATA")
    return found[-1]


def botocore_version(data):
    init = os.path.join(os.path.dirname(data), "__init__.py")
    try:
        with open(init, encoding="utf-8") as f:
            m = re.search(r"^__version__ = ['\"]([^'\"]+)", f.read(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


class Result:
    """What the checker found about one request."""

    def __init__(self):
        self.service = None
        self.operation = None
        self.protocol = None
        self.unidentified = None  # why no operation was found
        self.violations = []  # AWS would refuse the request for each of these
        self.unknown = []  # members the model does not have (not refused)
        self.skipped_patterns = []  # patterns that could not be compiled
        self.labels = {}  # rest-json: URI label values, still percent-encoded
        self.raw_payload = None  # rest-json: the member the raw body is

    @property
    def name(self):
        return f"{self.service}.{self.operation}" if self.operation else None


# --- models -----------------------------------------------------------------

_MODELS = {}


def model(service, data=None):
    """The newest model of `service` (a botocore data directory name), or None."""
    if service in _MODELS:
        return _MODELS[service]
    base = os.path.join(data or data_dir(), service)
    found = None
    if os.path.isdir(base):
        for date in sorted(os.listdir(base), reverse=True):
            for fname, opener in (("service-2.json.gz", gzip.open), ("service-2.json", open)):
                path = os.path.join(base, date, fname)
                if os.path.exists(path):
                    with opener(path, "rt", encoding="utf-8") as f:
                        found = Model(json.load(f))
                    break
            if found:
                break
    _MODELS[service] = found
    return found


_SIGNED_AS = None


def model_signed_as(signing_name, data=None):
    """The model whose SigV4 signing name is `signing_name` where its botocore
    directory is named otherwise (CloudWatch signs as `monitoring`, the IoT
    data plane as `iotdata`), or None. The index reads only each model's head."""
    global _SIGNED_AS
    if _SIGNED_AS is None:
        _SIGNED_AS = {}
        base = data or data_dir()
        for service in sorted(os.listdir(base)):
            directory = os.path.join(base, service)
            if not os.path.isdir(directory):
                continue
            for date in sorted(os.listdir(directory), reverse=True):
                for fname, opener in (("service-2.json.gz", gzip.open), ("service-2.json", open)):
                    path = os.path.join(directory, date, fname)
                    if os.path.exists(path):
                        with opener(path, "rt", encoding="utf-8") as f:
                            head = f.read(4096)
                        found = (re.search(r'"signingName"\s*:\s*"([^"]+)"', head)
                                 or re.search(r'"endpointPrefix"\s*:\s*"([^"]+)"', head))
                        if found and found.group(1) != service:
                            _SIGNED_AS.setdefault(found.group(1), service)
                        break
                else:
                    continue
                break
    service = _SIGNED_AS.get(signing_name)
    m = model(service, data) if service else None
    return m if m is not None and m.signing_name == signing_name else None


class Model:
    def __init__(self, raw):
        self.meta = raw["metadata"]
        self.shapes = raw["shapes"]
        self.operations = raw["operations"]
        self.protocol = self.meta.get("protocol")
        self.signing_name = self.meta.get("signingName") or self.meta.get("endpointPrefix")
        self._routes = None

    def routes(self):
        """(method, path regex, label names, query literals, literal weight, op) per REST operation."""
        if self._routes is None:
            self._routes = []
            for name, op in self.operations.items():
                http = op.get("http", {})
                uri = http.get("requestUri", "/")
                path, _, query = uri.partition("?")
                labels, parts, weight = [], [], 0
                for piece in re.split(r"(\{[^}]+\})", path):
                    if piece.startswith("{"):
                        label = piece[1:-1]
                        greedy = label.endswith("+")
                        labels.append(label.rstrip("+"))
                        parts.append(f"(?P<g{len(labels) - 1}>{'.+' if greedy else '[^/]+'})")
                    else:
                        parts.append(re.escape(piece))
                        weight += len(piece)
                literals = [q.split("=", 1) for q in query.split("&") if q]
                regex = re.compile("".join(parts) + "/?")
                self._routes.append((http.get("method", "POST"), regex, labels, literals, weight, name))
        return self._routes


def signing_name(headers, query):
    auth = headers.get("authorization", "")
    m = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if m:
        return m.group(1)
    cred = (query.get("X-Amz-Credential") or [""])[0]
    parts = cred.split("/")
    return parts[3] if len(parts) >= 5 else None


# --- identification -----------------------------------------------------------


def identify(res, method, raw_path, query, headers, body):
    """Sets res.service/operation/protocol (or res.unidentified); returns the model."""
    name = signing_name(headers, query)
    if not name:
        res.unidentified = f"unsigned {method} {raw_path}"
        return None
    m = model(name)
    if m is None or m.signing_name != name:
        m = model_signed_as(name)
    if m is None:
        res.unidentified = f"no botocore model for signing name {name!r} ({method} {raw_path})"
        return None
    res.service = name
    ctype = headers.get("content-type", "")
    target = headers.get("x-amz-target")
    if "cbor" in ctype or headers.get("smithy-protocol"):
        res.unidentified = f"{name}: protocol smithy-rpc-v2-cbor not checked ({method} {raw_path})"
        return None
    if target:
        prefix, _, op = target.rpartition(".")
        if m.protocol != "json" or prefix != m.meta.get("targetPrefix") or op not in m.operations:
            res.unidentified = f"{name}: X-Amz-Target {target!r} not in the model"
            return None
        res.protocol, res.operation = "json", op
        return m
    if m.protocol == "query" or ctype.startswith("application/x-www-form-urlencoded"):
        form = _form(query, headers, body)
        action = (form.get("Action") or [""])[0]
        if m.protocol not in ("query", "ec2"):
            res.unidentified = f"{name}: query-protocol request ({action}) to a {m.protocol} service"
            return None
        if action not in m.operations:
            res.unidentified = f"{name}: Action {action!r} not in the model"
            return None
        res.protocol, res.operation = "query", action
        return m
    if m.protocol != "rest-json":
        res.unidentified = f"{name}: protocol {m.protocol} not checked ({method} {raw_path})"
        return None
    best = None
    for verb, regex, labels, literals, weight, op in m.routes():
        if verb != method:
            continue
        found = regex.fullmatch(raw_path)
        if not found or not all(k in query and (not v or v[0] in query[k]) for k, *v in literals):
            continue
        score = (len(literals), weight)
        if best is None or score > best[0]:
            values = {label: found.group(f"g{i}") for i, label in enumerate(labels)}
            best = (score, op, values)
    if best is None:
        res.unidentified = f"{name}: no operation for {method} {raw_path}"
        return None
    res.protocol, res.operation = "rest-json", best[1]
    res.labels = best[2]
    return m


def _form(query, headers, body):
    form = dict(query)
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded") and body:
        for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
            form.setdefault(k, v)
    return form


# --- parsing the input as AWS would ------------------------------------------

_MISSING = object()


def _scalar(shape, text, where, res):
    """A string from a URI, query string, header or form parameter, typed."""
    t = shape["type"]
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("float", "double"):
            return float(text)
    except ValueError:
        res.violations.append(f"Value '{_show(text)}' at '{where}' failed to satisfy constraint: Member must be a number ({t})")
        return _MISSING
    if t == "boolean":
        if text not in ("true", "false"):
            res.violations.append(f"Value '{_show(text)}' at '{where}' failed to satisfy constraint: Member must be true or false")
            return _MISSING
        return text == "true"
    if t == "timestamp":
        return text
    return text


def parse_rest_json(m, op, query, headers, body, res):
    """The input as AWS reads it: a dict keyed by wire names (label, query
    parameter, header, JSON key), as `validate(..., wire=True)` expects."""
    shape = m.shapes[op["input"]["shape"]] if "input" in op else {"type": "structure", "members": {}}
    members = shape.get("members", {})
    top, bound_query, query_map, has_body = {}, set(), None, False
    for mname, ref in members.items():
        loc, wire = ref.get("location"), ref.get("locationName", mname)
        target = m.shapes[ref["shape"]]
        many = target["type"] == "list"
        item = m.shapes[target["member"]["shape"]] if many else target
        if loc == "uri":
            if res.labels.get(wire) is not None:
                top[wire] = _scalar(target, unquote(res.labels[wire]), mname, res)
        elif loc == "querystring" and target["type"] == "map":
            query_map = wire
        elif loc == "querystring":
            bound_query.add(wire)
            if wire in query:
                values = [_scalar(item, v, mname, res) for v in query[wire]]
                top[wire] = values if many else values[0]
        elif loc == "header":
            text = headers.get(wire.lower())
            if text is not None and target.get("jsonvalue"):
                top[wire] = text
            elif text is not None:
                values = [_scalar(item, v.strip(), mname, res) for v in (text.split(",") if many else [text])]
                top[wire] = values if many else values[0]
        elif loc == "headers":
            prefix = wire.lower()
            found = {k[len(prefix):]: v for k, v in headers.items() if k.startswith(prefix)}
            if found:
                top[wire] = found
        else:
            has_body = True
    if query_map:
        rest = {k: v[0] for k, v in query.items() if k not in bound_query}
        if rest:
            top[query_map] = rest
    payload = shape.get("payload")
    if payload:
        wire = members[payload].get("locationName", payload)
        target = m.shapes[members[payload]["shape"]]
        if target["type"] == "structure" and body:
            top[wire] = _json_body(body, res)
        elif body:
            top[wire] = body if target["type"] == "blob" else body.decode("utf-8", "replace")
            res.raw_payload = payload
    elif has_body and body.strip():
        doc = _json_body(body, res)
        if isinstance(doc, dict):
            top.update(doc)
        elif doc is not _MISSING:
            res.violations.append("The request body must be a JSON object")
    return shape, top


def _json_body(body, res):
    try:
        return json.loads(body)
    except ValueError as e:
        res.violations.append(f"The request body is not JSON: {e}")
        return _MISSING


def parse_query(m, form, shape, prefix):
    """The value of `shape` at `prefix` in form parameters (botocore's QuerySerializer, inverted)."""
    t = shape["type"]
    if t == "structure":
        out = {}
        for mname, ref in shape.get("members", {}).items():
            key = f"{prefix}.{ref.get('locationName', mname)}" if prefix else ref.get("locationName", mname)
            if key in form or any(k.startswith(key + ".") for k in form):
                value = parse_query(m, form, m.shapes[ref["shape"]], key)
                if value is not _MISSING:
                    out[mname] = value
        return out
    if t == "list":
        if form.get(prefix) == [""]:
            return []
        mref = shape["member"]
        if shape.get("flattened"):
            name = mref.get("locationName")
            base = ".".join(prefix.split(".")[:-1] + [name]) if name else prefix
        else:
            base = f"{prefix}.{mref.get('locationName', 'member')}"
        idx = _indices(form, base)
        return [parse_query(m, form, m.shapes[mref["shape"]], f"{base}.{i}") for i in idx]
    if t == "map":
        base = prefix if shape.get("flattened") else f"{prefix}.entry"
        kname = shape["key"].get("locationName", "key")
        vname = shape["value"].get("locationName", "value")
        out = {}
        for i in _indices(form, base):
            k = (form.get(f"{base}.{i}.{kname}") or [""])[0]
            out[k] = parse_query(m, form, m.shapes[shape["value"]["shape"]], f"{base}.{i}.{vname}")
        return out
    values = form.get(prefix)
    if values is None:
        return _MISSING
    return QueryScalar(values[0])


class QueryScalar(str):
    """A form parameter's text, typed by the validator against its shape."""


def _indices(form, base):
    found = set()
    pat = re.compile(re.escape(base) + r"\.(\d+)(?:\.|$)")
    for k in form:
        hit = pat.match(k)
        if hit:
            found.add(int(hit.group(1)))
    return sorted(found)


# --- validation ---------------------------------------------------------------


def _show(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _length(text):
    """Java's String.length(): UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def validate(m, shape, value, where, res, wire):
    """Appends to res.violations what AWS's validation of `value` against `shape` refuses.
    `wire`: nested structures are keyed by wire names (JSON), not member names (query)."""
    t = shape["type"]
    fail = lambda what: res.violations.append(  # noqa: E731
        f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: Member must {what}")
    if isinstance(value, QueryScalar):
        value = _scalar(shape, str(value), where, res) if t not in ("string", "blob", "timestamp") else str(value)
        if value is _MISSING:
            return
    if value is None or value is _MISSING or shape.get("document"):
        return
    if t == "structure":
        if not isinstance(value, dict):
            return fail("be an object")
        members = shape.get("members", {})
        keyed = {}
        for key, v in value.items():
            mname = next((n for n, r in members.items() if (r.get("locationName", n) if wire else n) == key), None)
            if mname is None:
                res.unknown.append(f"{where}.{key}" if where else key)
            else:
                keyed[mname] = v
        for req in shape.get("required", []):
            if keyed.get(req) is None:
                res.violations.append(
                    f"Value null at '{_join(where, req)}' failed to satisfy constraint: Member must not be null")
        if shape.get("union") and sum(v is not None for v in keyed.values()) != 1:
            fail("set exactly one member of the union")
        for mname, v in keyed.items():
            if v is not None and v is not _MISSING:
                validate(m, m.shapes[members[mname]["shape"]], v, _join(where, mname), res, wire)
    elif t == "list":
        if not isinstance(value, list):
            return fail("be a list")
        _range(shape, len(value), fail, "length")
        for i, v in enumerate(value):
            if v is not None:
                validate(m, m.shapes[shape["member"]["shape"]], v, f"{where}.{i + 1}", res, wire)
    elif t == "map":
        if not isinstance(value, dict):
            return fail("be a map")
        _range(shape, len(value), fail, "length")
        for k, v in value.items():
            validate(m, m.shapes[shape["key"]["shape"]], k, f"{where}.key", res, wire)
            if v is not None:
                validate(m, m.shapes[shape["value"]["shape"]], v, f"{where}.{k}", res, wire)
    elif t == "string":
        if not isinstance(value, str):
            return fail("be a string")
        if "enum" in shape and value not in shape["enum"]:
            return fail(f"satisfy enum value set: [{', '.join(shape['enum'])}]")
        _range(shape, _length(value), fail, "length")
        if "pattern" in shape:
            regex = java_regex(shape["pattern"])
            if regex is None:
                res.skipped_patterns.append(shape["pattern"])
            elif not regex.fullmatch(value):
                fail(f"satisfy regular expression pattern: {shape['pattern']}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return fail(f"be an {t}")
        _range(shape, value, fail, "value")
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return fail("be a number")
        _range(shape, value, fail, "value")
    elif t == "boolean":
        if not isinstance(value, bool):
            fail("be a boolean")
    elif t == "blob":
        if isinstance(value, str) and not res.raw_payload:
            try:
                value = base64.b64decode(value, validate=True)
            except ValueError:
                return fail("be base64-encoded")
        if isinstance(value, (bytes, str)):
            _range(shape, len(value), fail, "length")
    elif t == "timestamp":
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            fail("be a timestamp")


def _join(where, name):
    return f"{where}.{name}" if where else name


def _range(shape, n, fail, noun):
    if "min" in shape and n < shape["min"]:
        fail(f"have {noun} greater than or equal to {shape['min']}")
    elif "max" in shape and n > shape["max"]:
        fail(f"have {noun} less than or equal to {shape['max']}")


# --- entry point --------------------------------------------------------------


def check(method, raw_path, query_string, headers, body):
    """Checks one request (headers with lower-case names, body bytes) against its model."""
    res = Result()
    query = parse_qs(query_string or "", keep_blank_values=True)
    m = identify(res, method, raw_path, query, headers, body)
    if m is None:
        return res
    op = m.operations[res.operation]
    if res.protocol == "rest-json":
        shape, top = parse_rest_json(m, op, query, headers, body, res)
        validate(m, shape, top, "", res, wire=True)
        return res
    shape = m.shapes[op["input"]["shape"]] if "input" in op else {"type": "structure", "members": {}}
    if res.protocol == "json":
        doc = _json_body(body, res) if body.strip() else {}
        if doc is not _MISSING:
            validate(m, shape, doc, "", res, wire=True)
    else:
        form = _form(query, headers, body)
        value = parse_query(m, form, shape, "")
        validate(m, shape, value, "", res, wire=False)
    return res


if __name__ == "__main__":
    # python3 model_check.py METHOD PATH QUERY HEADERS_JSON BODY_FILE -> the Result as JSON
    method, path, qs, hdrs, body_file = sys.argv[1:6]
    with open(body_file, "rb") as f:
        body = f.read()
    r = check(method, path, qs, {k.lower(): v for k, v in json.loads(hdrs).items()}, body)
    print(json.dumps({"operation": r.name, "protocol": r.protocol, "unidentified": r.unidentified,
                      "violations": r.violations, "unknown": r.unknown,
                      "skipped_patterns": r.skipped_patterns}))
