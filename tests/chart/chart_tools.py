"""Real Helm and the Kubernetes API schemas, for tests/chart/helm.rs.

Helm here is the Helm library itself (Helm's Go code, built as a shared library), which PyPI's
helm-python-sdk ships with a ctypes binding; kubernetes-validate ships the OpenAPI schemas of
Kubernetes 1.25 to 1.37. ./scripts/test installs both (tests/chart/requirements.txt) into a directory that the
tests put on PYTHONPATH. Output is JSON on stdout; a chart Helm refuses exits 1 with Helm's message
on stderr, as the helm command does.

    chart_tools.py template NAME CHART [-n NS] [--set EXPR]... [--api-versions V]... [--kube-version V]
    chart_tools.py lint CHART [--strict] [-n NS] [--set EXPR]... [--kube-version V]
    chart_tools.py validate --kube-version V [--kube-version V]... < objects.json
"""

import argparse
import json
import sys

import helm_python as helm
import kubernetes_validate.utils as kubernetes
from helm_python import _native

# helm_lint's severities: 1 info, 2 warning, 3 error. `helm lint --strict` fails on warnings too.
WARNING = 2
ERROR = 3


def parsed_sets(expressions):
    """The values of --set flags, parsed by Helm's own parser. Helm parses each flag into the same
    map, in order, which is what parsing them joined by commas does."""
    return helm.parse_set_string(",".join(expressions)) if expressions else {}


def template(args):
    with helm.Chart.load(args.chart) as chart:
        # The binding's Chart.render takes no Kubernetes version or API versions, which the
        # library's own options (those of `helm template`) do take.
        options = {
            "name": args.name,
            "namespace": args.namespace,
            "is_install": True,
            "kube_version": args.kube_version,
            "api_versions": args.api_versions,
            "strict": True,
        }
        values = json.dumps(parsed_sets(args.set))
        rendered = _native.call_string("helm_render", chart._raw(), values, json.dumps(options))
    return {"manifests": json.loads(rendered)}


def lint(args):
    report = helm.lint(
        args.chart,
        parsed_sets(args.set),
        strict=args.strict,
        namespace=args.namespace,
        kube_version=args.kube_version,
    )
    worst = max((message["severity"] for message in report["messages"]), default=0)
    report["failed"] = bool(report["errors"]) or worst >= (WARNING if args.strict else ERROR)
    return report


def validate(args):
    """Each object's verdict against the schemas of each Kubernetes release asked for, strictly (no
    field the API does not define): {"valid": true}, {"invalid": message}, or {"noSchema": message}
    for a kind the release does not serve, such as a CRD's."""
    resources = json.load(sys.stdin)
    verdicts = {}
    for version in args.kube_version:
        verdicts[version] = []
        for resource in resources:
            try:
                kubernetes.validate(resource, version, strict=True)
                verdicts[version].append({"valid": True})
            except kubernetes.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                verdicts[version].append({"invalid": f"{path}: {error.message}"})
            except kubernetes.SchemaNotFoundError as error:
                verdicts[version].append({"noSchema": error.message})
    return verdicts


def main():
    parser = argparse.ArgumentParser(prog="chart_tools.py")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ["template", "lint"]:
        command = commands.add_parser(name)
        if name == "template":
            command.add_argument("name")
        command.add_argument("chart")
        command.add_argument("-n", "--namespace", default="default")
        command.add_argument("--set", action="append", default=[])
        command.add_argument("--kube-version", default=None)
        if name == "template":
            command.add_argument("-a", "--api-versions", action="append", default=[])
        else:
            command.add_argument("--strict", action="store_true")
    command = commands.add_parser("validate")
    command.add_argument("--kube-version", action="append", required=True)
    args = parser.parse_args()
    try:
        result = {"template": template, "lint": lint, "validate": validate}[args.command](args)
    except helm.HelmError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    return 1 if args.command == "lint" and result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
