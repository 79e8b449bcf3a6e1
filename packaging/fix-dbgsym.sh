#!/usr/bin/env bash
# Makes the -dbgsym packages CPack writes lintian-clean (run by packaging/dbgsym-post-build.cmake
# after every cpack). CMake 3.25's CPackDeb leaves three errors in each .ddeb:
#   md5sums-lists-nonexistent-file  its md5sums names the absolute staging path, not usr/lib/...
#   no-copyright-file, no-changelog the .ddeb has no usr/share/doc/<pkg>-dbgsym
# so each .ddeb is unpacked with its control files, given the doc symlink, the .debug files made
# 0644 (they are not meant to be run), md5sums recomputed, and repacked under the same name.
# Usage: fix-dbgsym.sh <dir with the .ddeb files>
set -euo pipefail
dir="$1"
shopt -s nullglob
for ddeb in "$dir"/*.ddeb; do
  tmp="$(mktemp -d)"
  dpkg-deb -R "$ddeb" "$tmp/p"
  pkg="$(dpkg-deb -f "$ddeb" Package)"
  # What dh_strip does: the doc directory is a symlink to that of the package the symbols are
  # for (which the .ddeb Depends on); lintian refuses real files in a debug package.
  mkdir -p "$tmp/p/usr/share/doc"
  ln -s "${pkg%-dbgsym}" "$tmp/p/usr/share/doc/$pkg"
  find "$tmp/p/usr/lib/debug" -type f -exec chmod 0644 {} +
  find "$tmp/p/usr" -type d -exec chmod 0755 {} +
  (cd "$tmp/p" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$tmp/p/DEBIAN/md5sums"
  dpkg-deb --root-owner-group -Zxz -b "$tmp/p" "$ddeb" >/dev/null
  rm -rf "$tmp"
done
