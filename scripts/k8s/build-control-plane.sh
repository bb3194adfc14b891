#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager v1.20.2 from Debian
# bookworm's `kubernetes` source package and cache the binaries.
#
# Why: the integration tests need a *real* control plane (admission, RBAC,
# controllers, pod log proxying) but the machine may only reach Debian apt and
# PyPI.  Debian ships the Kubernetes sources (not the server binaries), so we
# build the two server components ourselves, once, and cache them outside
# the repository (~105 MB each).
#
# Idempotent: if both binaries are already cached and executable it exits 0
# immediately.  The system apt configuration is never modified: source
# indexes are fetched into a private apt state directory.
set -euo pipefail

K8S_VERSION="1.20.2"
CACHE_DIR="${STACKWARDEN_K8S_CACHE:-$HOME/.cache/stackwarden/k8s-${K8S_VERSION}}"
BIN_DIR="${CACHE_DIR}/bin"
BINARIES=(kube-apiserver kube-controller-manager)

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

have_all() {
    local b
    for b in "${BINARIES[@]}"; do
        [[ -x "${BIN_DIR}/${b}" ]] || return 1
    done
    return 0
}

if have_all; then
    log "binaries already cached in ${BIN_DIR}; nothing to do"
    exit 0
fi

# --- build dependencies ------------------------------------------------------
need_pkgs=()
for pkg in golang-go etcd-server rsync jq dpkg-dev; do
    if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
        need_pkgs+=("${pkg}")
    fi
done
if ((${#need_pkgs[@]})); then
    log "installing missing apt packages: ${need_pkgs[*]}"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}"
fi

# --- find the Debian mirror used by the system's deb lines --------------------
find_mirror() {
    local f uri
    # deb822 .sources files: "URIs:" lines of stanzas whose Suites contain bookworm.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "${f}" ]] || continue
        uri="$(awk '
            BEGIN { RS=""; FS="\n" }
            {
                uris=""; suites=""; types=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uris=$i }
                    if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites=$i }
                    if ($i ~ /^Types:/)  { sub(/^Types:[ \t]*/, "", $i); types=$i }
                }
                if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/) { split(uris, u, " "); print u[1]; exit }
            }' "${f}")"
        if [[ -n "${uri}" ]]; then printf '%s\n' "${uri}"; return 0; fi
    done
    # one-line format: "deb [opts] URI bookworm main ..."
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "${f}" ]] || continue
        uri="$(awk '$1 == "deb" {
                   i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                   if ($(i+1) == "bookworm") { print $i; exit }
               }' "${f}")"
        if [[ -n "${uri}" ]]; then printf '%s\n' "${uri}"; return 0; fi
    done
    printf '%s\n' "http://deb.debian.org/debian"
}

MIRROR="$(find_mirror)"
log "using Debian mirror ${MIRROR}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/stackwarden-k8s-build.XXXXXX")"
cleanup() { rm -rf "${WORK}"; }
trap cleanup EXIT

APT_DIR="${WORK}/apt"
mkdir -p "${APT_DIR}/lists/partial" "${APT_DIR}/sourceparts" "${APT_DIR}/archives/partial"
printf 'deb-src %s bookworm main\n' "${MIRROR}" >"${APT_DIR}/sources.list"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=${APT_DIR}/sources.list"
    -o "Dir::Etc::sourceparts=${APT_DIR}/sourceparts"
    -o "Dir::State::Lists=${APT_DIR}/lists"
    -o "Dir::Cache::archives=${APT_DIR}/archives"
    -o "APT::Get::List-Cleanup=0"
)
if [[ "$(id -u)" == 0 ]]; then
    # The private dirs are root-only (mktemp); don't drop privileges to _apt.
    APT_OPTS+=(-o "APT::Sandbox::User=root")
fi

log "fetching source index (private apt state in ${APT_DIR})"
apt-get "${APT_OPTS[@]}" update -qq

SRC_DIR="${WORK}/src"
mkdir -p "${SRC_DIR}"
log "downloading kubernetes source package"
# bookworm ships 1.20.5+really1.20.2 (i.e. upstream 1.20.2 plus Debian security fixes).
(cd "${SRC_DIR}" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes)

DSC="$(find "${SRC_DIR}" -maxdepth 1 -name 'kubernetes_*.dsc' | head -n1)"
[[ -n "${DSC}" ]] || { log "no kubernetes .dsc downloaded"; exit 1; }
log "unpacking $(basename "${DSC}")"
dpkg-source --no-check -x "${DSC}" "${SRC_DIR}/tree" >/dev/null

TREE="${SRC_DIR}/tree"
if ! head -n1 "${TREE}/debian/changelog" | grep -qE "(really|\()${K8S_VERSION//./\\.}-"; then
    log "error: unpacked tree is not ${K8S_VERSION}: $(head -n1 "${TREE}/debian/changelog")"
    exit 1
fi

log "building kube-apiserver and kube-controller-manager (GOPATH mode, takes a few minutes)"
start=$(date +%s)
(
    cd "${TREE}"
    export GO111MODULE=off GOFLAGS= GOCACHE="${WORK}/gocache" GOPATH="${WORK}/gopath"
    # Version stamping: Debian's tree is not a git checkout.
    export KUBE_GIT_VERSION="v${K8S_VERSION}" KUBE_GIT_TREE_STATE=clean
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
)
log "build finished in $(( $(date +%s) - start )) s"

mkdir -p "${BIN_DIR}"
for b in "${BINARIES[@]}"; do
    src=""
    for cand in "${TREE}/_output/bin/${b}" "${TREE}/_output/local/bin/linux/amd64/${b}"; do
        if [[ -x "${cand}" ]]; then src="${cand}"; break; fi
    done
    [[ -n "${src}" ]] || { log "built binary ${b} not found under ${TREE}/_output"; exit 1; }
    # Copy to a temp name then rename so a concurrent reader never sees a partial file.
    install -m 0755 "${src}" "${BIN_DIR}/.${b}.tmp"
    mv -f "${BIN_DIR}/.${b}.tmp" "${BIN_DIR}/${b}"
    log "cached ${BIN_DIR}/${b} ($(du -h "${BIN_DIR}/${b}" | cut -f1))"
done

"${BIN_DIR}/kube-apiserver" --version >&2 || true
log "done"
