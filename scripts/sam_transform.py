#!/usr/bin/env python3
"""Prints a SAM template after the SAM transform, as JSON: what
CloudFormation deploys (the generated event source mapping, the function
as AWS::Lambda::Function). aws-sam-translator is the transform SAM runs;
cfn-lint no longer ships it (1.58 validates SAM templates untransformed).

  sam_transform.py TEMPLATE.yaml
"""
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator


def main():
    template, errors = decode(sys.argv[1])
    if errors:
        sys.exit(f"{sys.argv[1]}: {errors}")
    # A local CodeUri is what `sam build` uploads; the transform wants a location.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://bucket/function.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translated = Translator(managed_policy_map={}, sam_parser=parser.Parser()).translate(
        sam_template=template, parameter_values={}, passthrough_metadata=True
    )
    print(json.dumps(translated, default=str))


if __name__ == "__main__":
    main()
