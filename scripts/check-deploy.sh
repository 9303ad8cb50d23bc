#!/usr/bin/env bash
# Offline checks of what operators deploy: the Dockerfile (hadolint), and every
# Kubernetes object kustomize renders, validated against the Kubernetes schemas.
# Custom resources have no schema there: they are allowed by name, nothing else is.
set -euo pipefail
cd "$(dirname "$0")/.."

ALLOWED_CRDS="FoundationDBCluster"

hadolint deploy/Dockerfile
echo "check-deploy: deploy/Dockerfile: hadolint clean" >&2

# docker compose is not on CI machines: check the file's shape and that every file it
# mounts exists (the rempart configs themselves are checked by a test).
python3 - <<'PY'
import os, sys, yaml
path = "deploy/docker-compose.yml"
compose = yaml.safe_load(open(path))
services = compose.get("services") or {}
wanted = {"nats", "clamd", "edge-1", "edge-2", "scanner-1", "scanner-2", "relay", "console", "otel-collector", "jaeger"}
missing = wanted - set(services)
if missing:
    sys.exit(f"{path}: services missing: {sorted(missing)}")
for name, service in services.items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./") and not os.path.exists(os.path.join("deploy", source)):
            sys.exit(f"{path}: service {name} mounts {source}, which does not exist")
    for dependency in service.get("depends_on", []):
        if dependency not in services:
            sys.exit(f"{path}: service {name} depends on unknown service {dependency}")
print(f"check-deploy: {path}: {len(services)} services, mounts present", file=sys.stderr)
PY

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for kustomization in k8s/base k8s/overlays/dev k8s/overlays/production; do
    rendered="$out/$(echo "$kustomization" | tr / _).yaml"
    kubectl kustomize "$kustomization" > "$rendered"
    report=$(kubernetes-validate --strict "$rendered" 2>&1) || { echo "$report" >&2; exit 1; }
    if echo "$report" | grep -q "ERROR\|FAIL"; then echo "$report" >&2; exit 1; fi
    unknown=$(echo "$report" | sed -n "s/.*Couldn't find schema for kind \([A-Za-z]*\) .*/\1/p" | sort -u)
    for kind in $unknown; do
        case " $ALLOWED_CRDS " in
            *" $kind "*) ;;
            *) echo "check-deploy: $kustomization: no schema for kind $kind (not an allowed CRD)" >&2; exit 1 ;;
        esac
    done
    objects=$(grep -c '^kind:' "$rendered")
    echo "check-deploy: $kustomization: $objects objects valid (CRDs allowed: ${unknown:-none})" >&2
done
kubernetes-validate --strict --quiet k8s/loadtest/job.yaml
echo "check-deploy: k8s/loadtest/job.yaml valid" >&2
