"""Lists template.yaml's Lambda functions, one `LogicalId Binary` line each.

Scripts derive the function list from here, never from a list of their own:
a function added to the template is built, checked and served with no other
edit. Also importable (functions(), load_template()).

usage: python scripts/template_functions.py [TEMPLATE]
"""
import sys

import yaml


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, ...) read as None."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def load_template(path="template.yaml"):
    with open(path) as f:
        return yaml.load(f, Loader=_CfnLoader)


def functions(template):
    """(logical id, binary, resource) for every AWS::Serverless::Function, in template order."""
    return [
        (name, r["Metadata"]["BuildProperties"]["Binary"], r)
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    ]


if __name__ == "__main__":
    for name, binary, _ in functions(load_template(*sys.argv[1:2])):
        print(name, binary)
