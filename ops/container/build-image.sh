#!/usr/bin/env bash
# build-image.sh: build the recsd container image (Dockerfile at the repo
# root) where no image registry is reachable. The base image the Dockerfile
# names, debian:bookworm-slim, is made locally: debootstrap (minbase) from
# the Debian mirror, trimmed like Docker's slim images, imported into
# podman's store. Then `podman build` (or `buildah bud`) without pulling,
# a smoke run (`recsd version`), and the image size. Docker image format,
# not OCI: OCI images have no HEALTHCHECK.
#
#   sudo ops/container/build-image.sh [TAG]      default TAG recsd:<version>
#
# Environment (optional):
#   DEBIAN_MIRROR   default http://deb.debian.org/debian
#   REBUILD_BASE=1  make the base image again even if it exists
#   ENGINE          podman (default when installed) or buildah
#   OCI_RUNTIME     default runc when installed, else the engine's default.
#                   crun refuses a cgroup v2 hierarchy with controllers in
#                   "hybrid" mode (cgroup v1 + v2 mounted, as on the machine
#                   this was written on); runc handles it
#   IMAGE_ULIMITS   default "nofile=16384:16384 nproc=8192:8192": the engine's
#                   own defaults (about 1M files, 4M processes) cannot be set
#                   where the caller's hard limits are lower (containers in
#                   containers, sandboxes); these fit within common limits
# Needs root (debootstrap), debootstrap and podman or buildah
# (apt-get install debootstrap podman).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BASE=debian:bookworm-slim
VERSION=$(sed -n 's/^project(recsd VERSION \([0-9.]*\).*/\1/p' "$REPO/CMakeLists.txt")
TAG=${1:-recsd:${VERSION:-dev}}

log() { printf 'build-image: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ "$(id -u)" == 0 ]] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo buildah)}
command -v "$ENGINE" >/dev/null || die "neither podman nor buildah: apt-get install podman"

if [[ -z "${OCI_RUNTIME+set}" ]] && command -v runc >/dev/null; then OCI_RUNTIME=runc; fi
OCI_RUNTIME=${OCI_RUNTIME:-}
ULIMITS=()
for u in ${IMAGE_ULIMITS:-nofile=16384:16384 nproc=8192:8192}; do ULIMITS+=(--ulimit "$u"); done
RUNTIME=()
if [[ -n "$OCI_RUNTIME" ]]; then
    case "$ENGINE" in
    podman) RUNTIME=(--runtime "$OCI_RUNTIME") ;;
    buildah) RUNTIME=(--runtime "$(command -v "$OCI_RUNTIME")") ;;
    esac
fi

image_exists() {
    case "$ENGINE" in
    podman) podman image exists "$1" ;;
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    esac
}

WORK=$(mktemp -d /tmp/recsd-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${REBUILD_BASE:-}" ]] || ! image_exists "$BASE"; then
    ROOTFS=$WORK/rootfs
    log "debootstrap bookworm (minbase) from $MIRROR"
    debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $(tail -5 "$WORK/debootstrap.log")"
    # What the official slim image has: updates and security sources, no
    # docs, man pages or translations from later installs, no apt caches.
    cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SOURCES
    cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
    printf 'Acquire::Languages "none";\n' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
    cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
    rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
        "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/log/*.log \
        "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/cache/apt/archives/*.deb
    log "importing the rootfs as $BASE"
    case "$ENGINE" in
    podman)
        tar --numeric-owner -C "$ROOTFS" -c . |
            podman import --change 'CMD ["bash"]' - "$BASE" >/dev/null
        ;;
    buildah)
        tar --numeric-owner -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
        ctr=$(buildah from scratch)
        buildah add "$ctr" "$WORK/rootfs.tar" / >/dev/null
        buildah config --cmd bash "$ctr"
        buildah commit --rm "$ctr" "$BASE" >/dev/null
        ;;
    esac
else
    log "base image $BASE exists (REBUILD_BASE=1 to make it again)"
fi

log "building $TAG with $ENGINE"
case "$ENGINE" in
podman)
    podman "${RUNTIME[@]}" build --format docker --pull=never "${ULIMITS[@]}" -t "$TAG" \
        -f "$REPO/Dockerfile" "$REPO"
    ;;
buildah)
    buildah bud "${RUNTIME[@]}" --format docker --pull-never "${ULIMITS[@]}" -t "$TAG" \
        -f "$REPO/Dockerfile" "$REPO"
    ;;
esac

if [[ "$ENGINE" == podman ]]; then
    log "smoke run: recsd version"
    podman "${RUNTIME[@]}" run --rm --no-healthcheck "${ULIMITS[@]}" "$TAG" version
    user=$(podman image inspect --format '{{.Config.User}}' "$TAG")
    [[ "$user" == 10001:10001 ]] || die "image user is '$user', expected 10001:10001"
    size=$(podman image inspect --format '{{.Size}}' "$TAG")
    log "image $TAG: $((size / 1000000)) MB"
fi
