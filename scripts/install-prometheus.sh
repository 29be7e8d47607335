#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package, if they are missing.
#
# Tests (`tests/prometheus_support.py`, `tests/test_deploy_prometheus.py`) start their own
# Prometheus on a free loopback port with a temporary data dir, so the packaged system service
# is never wanted: the install runs under a policy-rc.d that forbids starting services, and any
# service the package did start anyway is stopped and disabled, so nothing is left on :9090.
#
# Usage: scripts/install-prometheus.sh          (idempotent; exit 0 when both tools exist)
set -euo pipefail

have_tools() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

if have_tools; then
    echo "prometheus: already installed ($(prometheus --version 2>&1 | head -n1))"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    cat >&2 <<'MSG'
install-prometheus: `prometheus` and `promtool` are not installed and this is not root.
Install them with your package manager, e.g. on Debian/Ubuntu:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus
or put the official release's `prometheus` and `promtool` binaries on PATH.
Tests that need them skip with this reason until then.
MSG
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prometheus: no apt-get here; install prometheus and promtool by hand" >&2
    exit 1
fi

# Forbid service starts during the install (the Docker convention: policy-rc.d exits 101).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [[ "$created_policy" -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Belt and braces: if a service manager started the packaged server anyway, stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
elif [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi

have_tools || { echo "install-prometheus: install finished but tools are missing" >&2; exit 1; }
echo "prometheus: installed ($(prometheus --version 2>&1 | head -n1))"
