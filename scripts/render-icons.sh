#!/usr/bin/env bash
# Renders resources/icons/strata.svg to the PNG sizes desktops and electron-builder look for.
# Needs rsvg-convert (Debian/Ubuntu: librsvg2-bin; Fedora: librsvg2-tools). The PNGs are
# committed, so only a change of the SVG needs this.
set -euo pipefail
cd "$(dirname "$0")/../resources/icons"
for size in 16 22 24 32 48 64 128 256 512; do
  rsvg-convert --width "$size" --height "$size" strata.svg --output "${size}x${size}.png"
done
echo "rendered $(ls ./*x*.png | wc -l) PNGs in resources/icons"
