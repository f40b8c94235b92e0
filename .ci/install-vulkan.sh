#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) so the WebGPU tests run on a machine without a GPU.
# Debian 12's own Mesa 22.3 lavapipe gives Dawn no adapter; bookworm-backports' Mesa 25 does, so the
# driver comes from there. Idempotent and quiet: does nothing when a new-enough lavapipe and the Vulkan
# loader are present, and prints one line when it cannot install them (the WebGPU tests then skip and say why).
set -uo pipefail

say_cannot() { echo "install-vulkan: $1; the WebGPU tests will skip and say why"; exit 0; }

lavapipe_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }

has_usable_lavapipe() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || return 1
  ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || return 1
  local version
  version="$(lavapipe_version)"
  # Mesa 22.x (bookworm's own) loads but gives Dawn no adapter.
  [ -n "$version" ] && [ "${version%%.*}" -ge 23 ] 2>/dev/null
}

has_usable_lavapipe && exit 0
command -v apt-get >/dev/null 2>&1 || say_cannot "no apt-get to install Mesa's lavapipe"
[ "$(id -u)" = 0 ] || say_cannot "not root, cannot install Mesa's lavapipe"
codename="$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")"
[ "$codename" = bookworm ] || say_cannot "not Debian bookworm ($codename), install mesa-vulkan-drivers 23+ and libvulkan1 by hand"

sources=/etc/apt/sources.list.d/backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat >"$sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
apt-get update -qq >/dev/null 2>&1 || say_cannot "apt-get update failed"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 \
  || say_cannot "could not install mesa-vulkan-drivers and libvulkan1 from bookworm-backports"
has_usable_lavapipe || say_cannot "installed mesa-vulkan-drivers $(lavapipe_version), but it is not a usable lavapipe"
