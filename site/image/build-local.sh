#!/usr/bin/env bash
# Build the condorcof worker image (condorcof/worker:latest) with NO registry access.
#
#   1. debootstrap a minimal Debian bookworm root filesystem (python3, python3-venv,
#      ca-certificates) from the Debian archive this machine's apt already uses, and
#      `docker import` it as local/debian-py:bookworm;
#   2. make a wheelhouse ON THE HOST with `pip download` for CPython 3.11 manylinux
#      (pip inside `docker build` cannot reach the index: the host's certificates and
#      index settings are not in the container);
#   3. `docker build --build-arg BASE=local/debian-py:bookworm` with site/image/Dockerfile and
#      the wheelhouse in the build context; tag condorcof/worker:latest;
#   4. smoke test: import uproot, awkward, numpy, hist, vector inside the image.
#
# Usage (as root):  build-local.sh [--if-needed] [--force]
#   --if-needed  do nothing when the image exists and was built from the same inputs
#                (label org.condorcof.inputs = sha256 of Dockerfile, this script, package list)
#   --force      rebuild the base image and the wheelhouse too
# Environment:
#   CONDORCOF_CACHE (/var/cache/condorcof)  rootfs tarball and wheelhouse cache
#   MIRROR          Debian archive URL (default: the first one in this machine's apt sources)
#   IMAGE           (condorcof/worker:latest)     BASE_IMAGE (local/debian-py:bookworm)
#   PACKAGES        ("uproot awkward numpy hist vector xrootd fsspec-xrootd")
#   WHEELHOUSE_IN_CONTAINER=1  run pip download inside the base image even if the host has python3.11
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CONDORCOF_CACHE:-/var/cache/condorcof}
IMAGE=${IMAGE:-condorcof/worker:latest}
BASE_IMAGE=${BASE_IMAGE:-local/debian-py:bookworm}
SUITE=bookworm           # its python3 is 3.11: must match --python-version below
PYVER=3.11
PACKAGES=${PACKAGES:-uproot awkward numpy hist vector xrootd fsspec-xrootd}
LABEL=org.condorcof.inputs

if_needed=0 force=0
for a in "$@"; do
    case $a in
        --if-needed) if_needed=1 ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "build-local.sh: unknown argument: $a" >&2; exit 2 ;;
    esac
done

log() { printf '[build-local %s] %s\n' "$(date +%T)" "$*"; }
die() { printf '[build-local] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, docker)"
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "docker engine does not answer (is dockerd running?)"

inputs_hash=$( { cat "$here/Dockerfile" "$here/build-local.sh"; echo "$PACKAGES $SUITE $PYVER $BASE_IMAGE"; } \
               | sha256sum | cut -c1-16)

if [ "$if_needed" = 1 ] && [ "$force" = 0 ]; then
    have=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
    if [ "$have" = "$inputs_hash" ]; then
        log "$IMAGE is up to date (inputs $inputs_hash)"
        exit 0
    fi
    log "$IMAGE: inputs '${have:-<no image>}' != '$inputs_hash', building"
fi

mkdir -p "$CACHE"

# ---- 1. base image from a debootstrapped root filesystem -----------------------------------
debian_mirror() {
    if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
    local f uri
    # deb822 sources first, then one-line sources; skip security and non-Debian archives.
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(grep -hE '^(URIs:|deb )' "$f" \
              | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
              | tr ' ' '\n' | grep -E '^https?://' | grep -E '/debian/?$' | grep -v security | head -n1 || true)
        if [ -n "$uri" ]; then echo "${uri%/}"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

tarball="$CACHE/rootfs-$SUITE-py.tar"
if [ "$force" = 1 ] || ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ "$force" = 1 ] || [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
        mirror=$(debian_mirror)
        rootfs="$CACHE/rootfs-$SUITE.tmp"
        rm -rf "$rootfs"
        log "debootstrap $SUITE from $mirror (about 40 s)"
        if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
                "$SUITE" "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
            tail -n 30 "$CACHE/debootstrap.log" >&2
            [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
            die "debootstrap failed (full log: $CACHE/debootstrap.log)"
        fi
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
        tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
        mv -f "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    log "docker import $tarball as $BASE_IMAGE"
    docker import "$tarball" "$BASE_IMAGE" >/dev/null
fi

# ---- 2. wheelhouse made on the host -----------------------------------------------------------
# pip evaluates environment markers (e.g. awkward's `importlib-metadata; python_version < "3.12"`)
# with the RUNNING interpreter, not --python-version: a 3.13 pip downloads an incomplete 3.11
# wheelhouse.  So use a host python$PYVER (Debian 12 has /usr/bin/python3.11); without one, run
# pip download inside the base image itself, on the host's network with the host's CA bundle.
host_py() {
    local py
    for py in "/usr/bin/python$PYVER" "python$PYVER"; do
        if command -v "$py" >/dev/null && [ "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$PYVER" ] \
           && "$py" -m pip --version >/dev/null 2>&1; then
            echo "$py"; return
        fi
    done
}
wheels="$CACHE/wheels-$(echo "$PACKAGES $PYVER" | sha256sum | cut -c1-12)"
if [ "$force" = 1 ] || [ ! -f "$wheels/.complete" ]; then
    rm -rf "$wheels" "$wheels.tmp"
    mkdir -p "$wheels.tmp"
    platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
    py=$(host_py)
    [ "${WHEELHOUSE_IN_CONTAINER:-0}" = 1 ] && py=""
    if [ -n "$py" ]; then
        log "pip download ($PACKAGES) for CPython $PYVER manylinux with host $py"
        # shellcheck disable=SC2086
        "$py" -m pip download -q -d "$wheels.tmp" --only-binary=:all: --python-version "$PYVER" \
            $platforms $PACKAGES || die "pip download of the wheelhouse failed"
    else
        log "no host python$PYVER with pip: pip download inside $BASE_IMAGE (host network, host CA bundle)"
        cabundle=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
        # shellcheck disable=SC2086
        docker run --rm --network host -v "$wheels.tmp:/wheels" -v "$cabundle:/host-ca.crt:ro" \
            -e PIP_CERT=/host-ca.crt -e PIP_INDEX_URL="${PIP_INDEX_URL:-https://pypi.org/simple}" \
            -e PIP_DISABLE_PIP_VERSION_CHECK=1 "$BASE_IMAGE" sh -c \
            "python3 -m venv /tmp/v && /tmp/v/bin/pip download -q -d /wheels --only-binary=:all: $platforms $PACKAGES" \
            || die "pip download of the wheelhouse inside $BASE_IMAGE failed"
    fi
    touch "$wheels.tmp/.complete"
    mv "$wheels.tmp" "$wheels"
fi
log "wheelhouse: $(ls "$wheels"/*.whl | wc -l) wheels in $wheels"

# ---- 3. docker build ---------------------------------------------------------------------------
ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$ctx/Dockerfile"
mkdir "$ctx/wheels"
cp -l "$wheels"/*.whl "$ctx/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$ctx/wheels/"
log "docker build $IMAGE (BASE=$BASE_IMAGE)"
if ! docker build --label "$LABEL=$inputs_hash" --build-arg "BASE=$BASE_IMAGE" \
        --build-arg "PACKAGES=$PACKAGES" -t "$IMAGE" "$ctx" >"$CACHE/docker-build.log" 2>&1; then
    tail -n 40 "$CACHE/docker-build.log" >&2
    die "docker build failed (full log: $CACHE/docker-build.log)"
fi

# ---- 4. smoke test -------------------------------------------------------------------------------
docker run --rm "$IMAGE" /opt/venv/bin/python -c "import uproot, awkward, numpy, hist, vector" \
    || die "smoke test failed: $IMAGE cannot import uproot, awkward, numpy, hist, vector"
versions=$(docker run --rm "$IMAGE" /opt/venv/bin/python -c \
    'import sys, uproot, awkward, numpy, hist, vector; print("python", sys.version.split()[0], "uproot", uproot.__version__, "awkward", awkward.__version__, "numpy", numpy.__version__, "hist", hist.__version__, "vector", vector.__version__)')
log "built $IMAGE $(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19): $versions"
