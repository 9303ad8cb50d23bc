#!/usr/bin/env bash
# Offline checks of what operators deploy: the Dockerfile (hadolint), and every
# Kubernetes object kustomize renders, validated against the Kubernetes schemas.
# Custom resources have no schema there: they are allowed by name, nothing else is.
set -euo pipefail
cd "$(dirname "$0")/.."

ALLOWED_CRDS="FoundationDBCluster"

hadolint deploy/Dockerfile
echo "check-deploy: deploy/Dockerfile: hadolint clean" >&2

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
