#!/usr/bin/env python3
"""Validates deploy/istio/ (run by .ci/run with the venv's Python, which has
jsonschema and PyYAML from check-jsonschema and kubernetes-validate).

- authorization-policy.yaml against the AuthorizationPolicy CRD's own
  openAPIV3Schema, vendored from Istio (deploy/istio/schemas/). Istio's CEL
  rules (x-kubernetes-validations) are not evaluated: no CEL here.
- istiod-values.yaml: Istio publishes no schema for meshConfig, so its
  extension provider is checked for what this project relies on: the
  provider the policy names, gRPC, our Service and port, an explicit
  timeout (Istio's default is 600 s), never failing open.
- Each check is shown to bite: a broken copy must fail.
"""
import copy
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
ISTIO = ROOT / "deploy/istio"


def crd_schema(path, version):
    crd = yaml.safe_load(path.read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise SystemExit(f"{path}: no version {version}")


def policy_errors(policy, schema):
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(policy)]


def provider_errors(values, policy, service):
    errors = []
    name = policy["spec"]["provider"]["name"]
    providers = {p["name"]: p for p in values["meshConfig"]["extensionProviders"]}
    if name not in providers:
        return [f"the policy's provider {name!r} is not in meshConfig.extensionProviders"]
    grpc = providers[name].get("envoyExtAuthzGrpc")
    if grpc is None:
        return [f"provider {name!r} is not envoyExtAuthzGrpc"]
    host = grpc.get("service", "")
    if not host.startswith(service["metadata"]["name"] + "."):
        errors.append(f"service {host!r} is not the Service {service['metadata']['name']!r}")
    ports = [p["port"] for p in service["spec"]["ports"] if p.get("appProtocol") == "grpc"]
    if grpc.get("port") != ports[0]:
        errors.append(f"port {grpc.get('port')} is not the Service's gRPC port {ports[0]}")
    timeout = str(grpc.get("timeout", ""))
    if not timeout.endswith("s") or float(timeout[:-1] or "inf") > 1:
        errors.append(f"timeout {timeout!r}: set one, at most 1s (Istio's default is 600s)")
    if grpc.get("failOpen", False):
        errors.append("failOpen must be false")
    return errors


def main():
    schema = crd_schema(ISTIO / "schemas/authorizationpolicies.security.istio.io.yaml", "v1")
    policy = yaml.safe_load((ISTIO / "authorization-policy.yaml").read_text())
    values = yaml.safe_load((ISTIO / "istiod-values.yaml").read_text())
    service = yaml.safe_load((ROOT / "deploy/kubernetes/service.yaml").read_text())
    errors = policy_errors(policy, schema) + provider_errors(values, policy, service)
    for e in errors:
        print(f"deploy/istio: {e}", file=sys.stderr)
    # The checks bite: broken copies are refused.
    bad_policy = copy.deepcopy(policy)
    bad_policy["spec"]["action"] = "ALLOWED"
    bad_values = copy.deepcopy(values)
    bad_values["meshConfig"]["extensionProviders"][0]["envoyExtAuthzGrpc"].pop("timeout")
    if not policy_errors(bad_policy, schema) or not provider_errors(bad_values, policy, service):
        print("deploy/istio: a broken copy passed: the checks do not bite", file=sys.stderr)
        return 1
    if errors:
        return 1
    print("deploy/istio: authorization-policy.yaml and istiod-values.yaml valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
