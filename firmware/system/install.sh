#!/bin/sh
# Install (or re-install: idempotent) the Outpost appliance on Raspberry Pi OS Bookworm.
#
#   sudo firmware/system/install.sh --wheels DIR [--home] [--no-start]
#
# DIR holds the release's complete, locked set of wheels (outpost-*.whl and every library;
# `make install` builds it with `pip wheel -w build/wheels .`). They are installed with
# --no-index --no-deps into /opt/outpost/releases/<version>/venv, exactly as the updater
# installs a signed release, and /opt/outpost/current is switched to it atomically.
#
# Environment: DESTDIR (install into this root instead of /: no user is created, nothing is
# chowned, systemctl is not called; for tests and image staging), PYTHON (the interpreter the
# virtualenv is built from, default /usr/bin/python3), EXTRA_SITE_DIRS (colon-separated site
# directories added to the virtualenv, for a shared base layer; normally empty).
set -eu

WHEELS=""
HOME_SERVER=no
START=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        --home) HOME_SERVER=yes; shift ;;
        --no-start) START=no; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

DESTDIR="${DESTDIR:-}"
PYTHON="${PYTHON:-/usr/bin/python3}"
EXTRA_SITE_DIRS="${EXTRA_SITE_DIRS:-}"
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "install.sh: $*" >&2; exit 1; }

[ -n "$WHEELS" ] || die "name the wheel directory with --wheels DIR (make install builds it)"
[ -d "$WHEELS" ] || die "$WHEELS is not a directory of wheels"
COUNT="$(ls "$WHEELS"/outpost-*.whl 2>/dev/null | wc -l)"
[ "$COUNT" -gt 0 ] || die "no outpost-*.whl in $WHEELS"
[ "$COUNT" -eq 1 ] || die "$WHEELS holds $COUNT outpost wheels; it must hold one release's set"
OUTPOST_WHEEL="$(ls "$WHEELS"/outpost-*.whl)"
VERSION="$(basename "$OUTPOST_WHEEL" | cut -d- -f2)"
case "$VERSION" in
    *[!0-9.]*|"") die "wheel version '$VERSION' is not a release version like 1.4.2" ;;
esac
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or set DESTDIR to install into a staging root)"
fi

OPT="$DESTDIR/opt/outpost"
DATA="$DESTDIR/var/lib/outpost"
ETC="$DESTDIR/etc/outpost"
UNITS="$DESTDIR/etc/systemd/system"

# ---- the system user (the appliance never runs as root) ----
if [ -z "$DESTDIR" ]; then
    if ! getent group outpost >/dev/null; then groupadd --system outpost; fi
    if ! getent passwd outpost >/dev/null; then
        useradd --system --gid outpost --home-dir /var/lib/outpost --no-create-home \
            --shell /usr/sbin/nologin --comment "Outpost appliance" outpost
    fi
    # The front panel: LEDs and button through /dev/gpiochip* (group gpio on Pi OS).
    if getent group gpio >/dev/null; then usermod -a -G gpio outpost; fi
    if [ "$HOME_SERVER" = yes ] && ! getent passwd outpost-home >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/outpost-home --no-create-home \
            --shell /usr/sbin/nologin --comment "Outpost home server" outpost-home
    fi
fi

own() {  # own USER:GROUP MODE PATH: mode always, owner only on a real install
    chmod "$2" "$3"
    if [ -z "$DESTDIR" ]; then chown "$1" "$3"; fi
}

# ---- directories ----
install -d "$OPT" "$OPT/releases" "$OPT/updater" "$DATA" "$DATA/update" "$ETC" "$UNITS"
own root:root 0755 "$OPT"
own root:root 0755 "$OPT/releases"
own root:root 0755 "$OPT/updater"
own outpost:outpost 0750 "$DATA"
own outpost:outpost 0750 "$DATA/update"
own root:outpost 0750 "$ETC"

# ---- the release: built beside the others, renamed into place when complete ----
RELEASE="$OPT/releases/$VERSION"
if [ -e "$RELEASE/.installed" ]; then
    echo "release $VERSION already installed"
else
    # A release without its .installed marker is a leftover of an interrupted run: redo it.
    # (The current link is only switched after the marker, so it never names such a release.)
    rm -rf "$RELEASE"
    install -d "$RELEASE/wheels"
    cp "$WHEELS"/*.whl "$RELEASE/wheels/"
    # The virtualenv is built at its final path (virtualenvs are not relocatable).
    "$PYTHON" -m venv "$RELEASE/venv"
    if [ -n "$EXTRA_SITE_DIRS" ]; then
        SITE="$(ls -d "$RELEASE"/venv/lib/python3*/site-packages)"
        echo "$EXTRA_SITE_DIRS" | tr ':' '\n' > "$SITE/outpost-base.pth"
    fi
    "$RELEASE/venv/bin/python" -m pip install --quiet --no-index --no-deps \
        --disable-pip-version-check "$RELEASE"/wheels/*.whl
    "$RELEASE/venv/bin/outpost" --version >/dev/null \
        || die "the installed release does not start; see the error above"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$RELEASE/.installed"
    echo "installed release $VERSION"
fi

# ---- current (and previous) links, switched by rename ----
switch_link() {  # switch_link LINK TARGET
    ln -sfn "$2" "$1.new"
    mv -T "$1.new" "$1"
}
OLD="$(readlink "$OPT/current" 2>/dev/null || true)"
if [ "$OLD" != "releases/$VERSION" ]; then
    if [ -n "$OLD" ]; then switch_link "$OPT/previous" "$OLD"; fi
    switch_link "$OPT/current" "releases/$VERSION"
    sync "$OPT" 2>/dev/null || sync
    echo "current -> releases/$VERSION"
fi

# ---- systemd units and the configuration (kept when present: it is the operator's) ----
for unit in outpost.service outpost-updater.service outpost-updater.path outpost-updater.timer \
            outpost-home.service; do
    install -m 0644 "$HERE/$unit" "$UNITS/$unit"
done
if [ ! -e "$ETC/outpost.toml" ]; then
    install -m 0640 "$HERE/outpost.toml" "$ETC/outpost.toml"
    if [ -z "$DESTDIR" ]; then chown root:outpost "$ETC/outpost.toml"; fi
    echo "wrote $ETC/outpost.toml"
fi

if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null; then
    systemctl daemon-reload
    systemctl enable outpost.service outpost-updater.service outpost-updater.path \
        outpost-updater.timer >/dev/null
    if [ "$HOME_SERVER" = yes ]; then systemctl enable outpost-home.service >/dev/null; fi
    if [ "$START" = yes ]; then
        systemctl start outpost-updater.path outpost-updater.timer
        systemctl restart outpost.service
        if [ "$HOME_SERVER" = yes ]; then systemctl restart outpost-home.service; fi
    fi
fi
echo "outpost $VERSION installed"
