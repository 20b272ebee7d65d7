#!/usr/bin/env bash
# Set up .venv with napari-adaptiveclick and one extra ("napari" for the GUI and demo,
# "testing" for the test suite, "train" for training only), plus the Debian packages that
# headless napari needs (Xvfb and Qt's xcb libraries) when they are missing and we are root.
#   bash scripts/setup.sh testing
set -euo pipefail
extra="${1:-napari}"
cd "$(dirname "$0")/.."

debs=(xvfb xauth libgl1 libegl1 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon-x11-0
      libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
      libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1)
if [ "$extra" != "train" ]; then
  missing=()
  for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "note: install these Debian packages for headless napari: ${missing[*]}" >&2
    fi
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[$extra]"
