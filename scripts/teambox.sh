#!/usr/bin/env bash
# A second Docker engine on a second address of this machine, for tests of a remote baseline.
#
#   scripts/teambox.sh up      # idempotent: namespace "teambox" at 10.250.0.2, its own dockerd
#                              # (tcp://10.250.0.2:2375 and unix:///run/teambox.sock, own data root),
#                              # debian:bookworm-slim copied into it
#   scripts/teambox.sh down    # idempotent: removes every rule, link, namespace and directory "up" added
#   scripts/teambox.sh status  # prints "up <version>" or "down"; exit 0 when up, 1 when down
#   scripts/teambox.sh sshd-up DIR    # idempotent: an sshd in the namespace at 10.250.0.2:22, for tests of
#                                     # ssh:// engines; all it uses is in DIR: host key, client key,
#                                     # authorized_keys (root, key only, DOCKER_HOST = this engine), config, pid, log
#   scripts/teambox.sh sshd-down DIR  # idempotent: stops that sshd and removes what sshd-up wrote in DIR
#                                     # ("down" also stops any sshd left in the namespace)
#
# Needs root. The engine listens on plain TCP without TLS: acceptable only inside this namespace,
# which only this machine reaches. Real remote engines are reached over SSH or TLS.
set -euo pipefail

NS=teambox
HOST_IF=tb0
NS_IF=tb1
HOST_ADDR=10.250.0.1
NS_ADDR=10.250.0.2
SUBNET=10.250.0.0/24
ENGINE_TCP="tcp://${NS_ADDR}:2375"
ENGINE_SOCK=/run/teambox.sock
DATA_ROOT=/var/lib/docker-teambox
EXEC_ROOT=/run/docker-teambox
PIDFILE=/run/teambox.pid
LOG=/var/log/teambox-dockerd.log
BRIDGE_IP=172.31.250.1/24
BASE_IMAGE=debian:bookworm-slim
READY_SECONDS=60

# The iptables rules "up" adds, one per line: table, chain, rule. "down" deletes exactly these.
RULES=(
  "nat POSTROUTING -s ${SUBNET} ! -d ${SUBNET} -j MASQUERADE"
  "filter FORWARD -i ${HOST_IF} -j ACCEPT"
  "filter FORWARD -o ${HOST_IF} -j ACCEPT"
)

SSHD_FILES=(host_key host_key.pub client_key client_key.pub authorized_keys sshd_config sshd.pid sshd.log)

engine() { docker -H "unix://${ENGINE_SOCK}" "$@"; }

engine_version() { engine version --format '{{.Server.Version}}' 2>/dev/null; }

# Captured, not piped into grep -q: with pipefail an early-exiting grep fails the pipeline.
namespace_exists() { [[ " $(ip netns list | cut -d' ' -f1 | tr '\n' ' ') " == *" ${NS} "* ]]; }

dockerd_running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

namespace_up() {
  namespace_exists || ip netns add "$NS"
  if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
    ip link add "$HOST_IF" type veth peer name "$NS_IF"
    ip link set "$NS_IF" netns "$NS"
  fi
  [[ "$(ip addr show dev "$HOST_IF")" == *"${HOST_ADDR}/24"* ]] || ip addr add "${HOST_ADDR}/24" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  [[ "$(ip netns exec "$NS" ip addr show dev "$NS_IF")" == *"${NS_ADDR}/24"* ]] \
    || ip netns exec "$NS" ip addr add "${NS_ADDR}/24" dev "$NS_IF"
  ip netns exec "$NS" ip link set "$NS_IF" up
  ip netns exec "$NS" ip link set lo up
  [[ -n "$(ip netns exec "$NS" ip route show default)" ]] || ip netns exec "$NS" ip route add default via "$HOST_ADDR"
  sysctl -qw net.ipv4.ip_forward=1
}

rules_up() {
  local rule table chain rest
  for rule in "${RULES[@]}"; do
    read -r table chain rest <<<"$rule"
    # shellcheck disable=SC2086  # the rule is a list of iptables words
    iptables -t "$table" -C "$chain" $rest 2>/dev/null || iptables -t "$table" -I "$chain" $rest
  done
}

rules_down() {
  local rule table chain rest
  for rule in "${RULES[@]}"; do
    read -r table chain rest <<<"$rule"
    # shellcheck disable=SC2086
    while iptables -t "$table" -C "$chain" $rest 2>/dev/null; do iptables -t "$table" -D "$chain" $rest; done
  done
}

dockerd_up() {
  dockerd_running && return 0
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  # nsenter --net enters only the network namespace: `ip netns exec` remounts /sys and dockerd
  # then fails with "Devices cgroup isn't mounted".
  nsenter --net="/run/netns/${NS}" setsid dockerd \
    -H "unix://${ENGINE_SOCK}" -H "$ENGINE_TCP" \
    --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" --bip "$BRIDGE_IP" >"$LOG" 2>&1 </dev/null &
  local waited=0
  until engine_version >/dev/null; do
    (( waited++ < READY_SECONDS )) || { echo "teambox: dockerd not ready after ${READY_SECONDS}s, see ${LOG}" >&2; exit 2; }
    sleep 1
  done
}

image_up() {
  engine image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  docker save "$BASE_IMAGE" | engine load >/dev/null
}

cmd_up() {
  namespace_up
  rules_up
  dockerd_up
  image_up
  echo "up $(engine_version) ${ENGINE_TCP}"
}

sshd_pid() { [[ -f "$1/sshd.pid" ]] && kill -0 "$(cat "$1/sshd.pid")" 2>/dev/null && cat "$1/sshd.pid"; }

stop_pid() {
  local waited=0
  kill "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && (( waited++ < 30 )); do sleep 0.2; done
  if kill -0 "$1" 2>/dev/null; then kill -9 "$1" 2>/dev/null || true; fi
}

cmd_sshd_up() {
  local dir="${1:?usage: teambox.sh sshd-up DIR}" waited=0
  namespace_exists || { echo "teambox: down; run 'teambox.sh up' first" >&2; exit 2; }
  mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
  if sshd_pid "$dir" >/dev/null; then echo "sshd up ${NS_ADDR}:22 ${dir}"; return 0; fi
  [[ -f "$dir/host_key" ]] || ssh-keygen -q -t ed25519 -N '' -C teambox-host -f "$dir/host_key"
  [[ -f "$dir/client_key" ]] || ssh-keygen -q -t ed25519 -N '' -C teambox-client -f "$dir/client_key"
  # Docker's ssh helper runs `docker system dial-stdio` there: this environment points it at this engine
  echo "environment=\"DOCKER_HOST=unix://${ENGINE_SOCK}\" $(cat "$dir/client_key.pub")" >"$dir/authorized_keys"
  printf '%s\n' "ListenAddress ${NS_ADDR}:22" "HostKey ${dir}/host_key" "PidFile ${dir}/sshd.pid" \
    "AuthorizedKeysFile ${dir}/authorized_keys" "PermitRootLogin prohibit-password" "PubkeyAuthentication yes" \
    "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitUserEnvironment yes" \
    "StrictModes no" "UsePAM no" "AllowTcpForwarding yes" >"$dir/sshd_config"
  mkdir -p /run/sshd  # sshd's privilege separation directory (the system's ssh service makes it otherwise)
  ip netns exec "$NS" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  until sshd_pid "$dir" >/dev/null; do
    (( waited++ < 50 )) || { echo "teambox: sshd did not start, see $dir/sshd.log" >&2; exit 2; }
    sleep 0.1
  done
  echo "sshd up ${NS_ADDR}:22 ${dir}"
}

cmd_sshd_down() {
  local dir="${1:?usage: teambox.sh sshd-down DIR}" pid file
  if [[ -d "$dir" ]]; then
    if pid=$(sshd_pid "$dir"); then stop_pid "$pid"; fi
    for file in "${SSHD_FILES[@]}"; do rm -f "${dir}/${file}"; done
  fi
  echo "sshd down"
}

# Every sshd still running in the namespace (only sshd-up starts one there).
sshd_down_all() {
  local pid
  namespace_exists || return 0
  for pid in $(ip netns pids "$NS"); do
    if [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == sshd ]]; then stop_pid "$pid"; fi
  done
}

cmd_down() {
  sshd_down_all
  if dockerd_running; then
    local pid waited=0
    pid=$(cat "$PIDFILE")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null && (( waited++ < 30 )); do sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$PIDFILE" "$ENGINE_SOCK"
  rules_down
  if ip link show "$HOST_IF" >/dev/null 2>&1; then ip link del "$HOST_IF"; fi
  if namespace_exists; then ip netns del "$NS"; fi
  # containers' mounts below the roots are gone with their dockerd; remove what is left
  if [[ -d "$EXEC_ROOT" ]]; then rm -rf "$EXEC_ROOT"; fi
  if [[ -d "$DATA_ROOT" ]]; then
    grep -o " ${DATA_ROOT}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$DATA_ROOT"
  fi
  echo "down"
}

cmd_status() {
  local version
  if version=$(engine_version) && [[ -n "$version" ]]; then
    echo "up ${version} ${ENGINE_TCP}"
  else
    echo "down"
    return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  sshd-up) cmd_sshd_up "${2:-}" ;;
  sshd-down) cmd_sshd_down "${2:-}" ;;
  *) echo "usage: $0 up|down|status|sshd-up DIR|sshd-down DIR" >&2; exit 3 ;;
esac
