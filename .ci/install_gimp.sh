#!/usr/bin/env bash
# Build, or reuse, a Debian trixie chroot holding GIMP 3 with Python plug-in support.
#
# GIMP 3 is not packaged for Debian 12, so the GIMP end-to-end test runs GIMP inside a
# trixie chroot. The chroot is cached outside the checkout so later CI runs on the same
# machine reuse it (a finished chroot is marked by $ROOT/.lineart-ready).
#
# Usage: .ci/install_gimp.sh            (needs root: debootstrap and chroot)
# Env:   LINEART_GIMP_CHROOT  chroot folder  (default /var/cache/lineart-restore/gimp-trixie)
#        DEBIAN_MIRROR        mirror URL     (default http://deb.debian.org/debian)
# Prints the chroot path on its last line. Exit status 0 only if gimp-console-3.0 and the
# GIMP Python bindings work inside the chroot.
set -euo pipefail

ROOT="${LINEART_GIMP_CHROOT:-/var/cache/lineart-restore/gimp-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# xvfb, xauth and xdotool: the interactive (dialog) test runs GIMP's plug-in UI on a virtual display.
PACKAGES="gimp python3-gi gir1.2-gimp-3.0 ca-certificates xvfb xauth xdotool"
READY="$ROOT/.lineart-ready"

log() { echo "[install_gimp] $*" >&2; }

check_chroot() {
    # gimp-console must start and the GIMP 3 typelib must import from the chroot's python3.
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp \
        python3 -c 'import gi; gi.require_version("Gimp", "3.0"); from gi.repository import Gimp' \
        && chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp gimp-console-3.0 --version
}

if [ "$(id -u)" != 0 ]; then
    log "needs root (debootstrap and chroot); run it as root or with sudo"
    exit 2
fi

mkdir -p "$(dirname "$ROOT")"
# One builder at a time: a second caller waits for the first to finish, then reuses its result.
exec 9>"$(dirname "$ROOT")/.$(basename "$ROOT").lock"
flock 9

apt_in() {  # apt_in ROOT PACKAGES...: install packages inside a chroot (mounts /proc meanwhile)
    local root=$1; shift
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $* >/dev/null && apt-get clean"
    local rc=$?
    umount "$root/proc"
    return $rc
}

if [ -f "$READY" ] && check_chroot >/dev/null 2>&1; then
    # A chroot cached by an older version of this script may lack packages added since.
    missing=$(chroot "$ROOT" dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PACKAGES 2>/dev/null \
        | awk '$2 == "installed" {print $1}' | sort | comm -13 - <(tr ' ' '\n' <<<"$PACKAGES" | sort))
    if [ -n "$missing" ]; then
        log "adding missing packages to the cached chroot: $missing"
        apt_in "$ROOT" $missing || { log "could not add $missing"; exit 1; }
    fi
    log "reusing cached chroot $ROOT ($(cat "$READY"))"
    echo "$ROOT"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap on the host"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap >/dev/null
fi

PARTIAL="$ROOT.partial"
cleanup() {
    # Never leave a mounted /proc behind, whatever happened.
    if mountpoint -q "$PARTIAL/proc" 2>/dev/null; then umount "$PARTIAL/proc" || true; fi
}
trap cleanup EXIT

cleanup
rm -rf "$PARTIAL"
if [ -d "$ROOT" ]; then
    log "removing incomplete or broken chroot $ROOT"
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || true; fi
    rm -rf "$ROOT"
fi

start=$(date +%s)
log "debootstrap trixie into $PARTIAL from $MIRROR"
debootstrap --variant=minbase trixie "$PARTIAL" "$MIRROR" >"$PARTIAL.debootstrap.log" 2>&1 || {
    log "debootstrap failed; last lines of $PARTIAL.debootstrap.log:"
    tail -n 20 "$PARTIAL.debootstrap.log" >&2
    exit 1
}

log "installing $PACKAGES inside the chroot"
apt_in "$PARTIAL" $PACKAGES || { log "apt-get inside the chroot failed"; exit 1; }

mv "$PARTIAL" "$ROOT"
mv "$PARTIAL.debootstrap.log" "$ROOT/var/log/lineart-debootstrap.log" 2>/dev/null || true
trap - EXIT
version=$(check_chroot 2>/dev/null | tail -n 1) || { log "GIMP does not start inside $ROOT"; exit 1; }
echo "$version, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$READY"
log "built $ROOT in $(( $(date +%s) - start )) s: $version"
echo "$ROOT"
