#!/bin/sh
# Builds the collector's image with buildah, without a registry: the base is a minimal
# Debian root filesystem with Debian's Python 3.11, made here by mmdebstrap.
#
#   image/build.sh [TAG]        (make image)
#
# Needs root (or a user set up for rootless buildah). Installs buildah and mmdebstrap
# from Debian's packages when they are missing and it runs as root.
set -eu

TAG=${1:-localhost/aws-collector:latest}
BASE=${BASE_IMAGE:-localhost/aws-collector-base:bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
# vfs and chroot work inside an unprivileged container too (no overlayfs, no namespaces).
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "image/build.sh: install buildah and mmdebstrap first" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap >/dev/null
fi

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # No manual pages, documentation or translations: nobody reads them in a container.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        "$SUITE" "$work/rootfs.tar"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n' > "$work/Containerfile"
    buildah bud --quiet -f "$work/Containerfile" -t "$BASE" "$work" >/dev/null
fi

# Behind a TLS-inspecting proxy pip needs its CA: mounted for the build only, never
# copied into the image.
set --
ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
if [ -n "$ca" ] && [ -f "$ca" ]; then
    set -- --volume "$ca:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt
fi
buildah bud --quiet --layers=false --build-arg BASE="$BASE" "$@" -t "$TAG" . >/dev/null
buildah rmi --prune >/dev/null 2>&1 || true
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$TAG"
