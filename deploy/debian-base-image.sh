#!/usr/bin/env bash
# A minimal Debian base image made locally, for machines that reach Debian's mirror but no
# image registry:
#
#   deploy/debian-base-image.sh [TAG]       (as root; needs debootstrap and docker)
#
# It debootstraps the release this machine runs (VERSION_CODENAME in /etc/os-release) from
# the mirror this machine's apt uses, trims it as Debian's -slim images are trimmed, and
# imports it as TAG (default sitechat-base:<release>). Then build with
# `--build-arg BASE_IMAGE=<TAG>`. RELEASE, MIRROR and DOCKER override what is detected.
set -euo pipefail

. /etc/os-release
RELEASE="${RELEASE:-${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}}"
TAG="${1:-sitechat-base:${RELEASE}}"
DOCKER="${DOCKER:-docker}"

# The first mirror apt is configured with for Debian itself (deb822 or one-line sources).
host_mirror() {
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
        grep -v -e security -e '/debian-security' | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            awk '{print $2}' | grep -v security | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(host_mirror)}"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

echo "debootstrap $RELEASE from $MIRROR" >&2
debootstrap --variant=minbase "$RELEASE" "$root" "$MIRROR" >"$root.log" 2>&1 ||
    { cat "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# As in Debian's -slim images: no documentation or translations from later installs, no
# package files kept, no lists in the image.
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$root/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
find "$root/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*

tar -C "$root" -c . | "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $RELEASE" - "$TAG" >/dev/null
echo "$TAG"
