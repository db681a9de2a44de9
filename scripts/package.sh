#!/usr/bin/env bash
# Builds out/flowmeter_VERSION_ARCH.deb: a release binary with the Swift runtime
# linked statically (so the package depends only on what dpkg-shlibdeps finds:
# libc, libpcap, libsqlite3, ...), the systemd unit, /etc/flowmeter/flowmeter.yaml
# as a conffile, the flowmeter system user, manual pages (generated from the
# command definitions, with FILES and EXAMPLES from packaging/man/), shell
# completions and docs/ under /usr/share/doc/flowmeter/docs.
#
#   scripts/package.sh            build (about 9 min cold on 2 cores) and package
#   FLOWMETER_SKIP_BUILD=1 ...    package the binary already built
#   DEB_REVISION=2 ...            Debian revision (default 1; must match packaging/debian/changelog)
#   DEB_MAINTAINER='Name <mail>'  Maintainer field (default: the one in the changelog)
#
# Needs dpkg-dev (dpkg-shlibdeps) and, for the check at the end, lintian;
# installs them with apt-get when missing. Runs the compiler with nice -n 19.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build-release-static     # ignored by git (.build*/)
manual_scratch=.build-generate-manual
out=out
started=$SECONDS

need() {  # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (for $1)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
}
need dpkg-shlibdeps dpkg-dev
need lintian lintian
scripts/install-deps.sh   # libpcap-dev, libsqlite3-dev: the link needs them

# --- Version and architecture ---------------------------------------------------
# FlowMeterVersion.string, wherever the target layout puts it.
version_file=$(grep -rl 'enum FlowMeterVersion' Sources | head -1)
upstream=$(sed -n 's/.*static let string = "\([^"]*\)".*/\1/p' "$version_file")
[ -n "$upstream" ] || { echo "package.sh: no FlowMeterVersion.string found under Sources/" >&2; exit 1; }
version="$upstream-${DEB_REVISION:-1}"
arch=$(dpkg --print-architecture)
changelog_version=$(sed -n '1s/^flowmeter (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$changelog_version" != "$version" ]; then
  echo "package.sh: packaging/debian/changelog starts at $changelog_version, the package would be $version;" >&2
  echo "            add a changelog entry for $version first" >&2
  exit 1
fi
maintainer=${DEB_MAINTAINER:-$(sed -n 's/^ -- \(.*>\)  .*/\1/p' packaging/debian/changelog | head -1)}
# The changelog date, so manual pages of the same version are byte-identical.
release_date=$(date -u -d "$(sed -n 's/^ -- .*>  //p' packaging/debian/changelog | head -1)" +%Y-%m-%d)

# --- The binary -------------------------------------------------------------------
build_started=$SECONDS
if [ -z "${FLOWMETER_SKIP_BUILD:-}" ]; then
  # What keeps the binary small (BENCHMARKS.md, "Binary size"); each changes
  # only the final link:
  # - ICU's data cut to what FlowMeter's Foundation calls read
  #   (scripts/icu_data_filter.py), linked in place of the toolchain's 34 MB
  #   copy: --wrap sends every reference to the data symbol to the copy;
  # - only main exported (packaging/flowmeter.exports), so --gc-sections
  #   may drop what nothing calls;
  # - the toolchain's lld (a toolset), for packed relative relocations
  #   (DT_RELR, glibc 2.36 and later): 2.6 MB of .rela.dyn become a few kB.
  # -z now: full RELRO (the GOT read-only after start), as Debian's hardening
  # flags give every package.
  # Every target, not only the product: this is CI's release build of the
  # whole package (`swift build -c release` compiles the same), with SwiftPM's
  # check that each import is a declared dependency, as an error. Only the
  # flowmeter executable is linked, so the link flags are its alone.
  icu_data="$PWD/$scratch/icu-data"
  python3 scripts/icu_data_filter.py "$icu_data"
  toolchain_bin=$(dirname "$(realpath "$(command -v swiftc)")")
  mkdir -p "$scratch"
  printf '{ "schemaVersion": "1.0", "linker": { "path": "%s/ld.lld" } }\n' "$toolchain_bin" > "$scratch/toolset-lld.json"
  nice -n 19 swift build -c release --static-swift-stdlib --scratch-path "$scratch" \
    --explicit-target-dependency-import-check error --toolset "$PWD/$scratch/toolset-lld.json" \
    -Xlinker --wrap="$(cat "$icu_data/icu_data.symbol")" -Xlinker "$icu_data/icu_data.o" \
    -Xlinker --version-script="$PWD/packaging/flowmeter.exports" \
    -Xlinker -z -Xlinker pack-relative-relocs -Xlinker -z -Xlinker now
fi
binary="$scratch/release/flowmeter"
[ -x "$binary" ] || { echo "package.sh: $binary is missing (build it, or drop FLOWMETER_SKIP_BUILD)" >&2; exit 1; }
if ldd "$binary" | grep -i swift; then
  echo "package.sh: the binary links a Swift library dynamically (above); build with --static-swift-stdlib" >&2
  exit 1
fi
build_seconds=$((SECONDS - build_started))

# generate-manual is the tool behind swift-argument-parser's generate-manual
# plugin. The plugin would rebuild every product of this package a second time
# (release, dynamic runtime); building only the tool from the resolved checkout
# and pointing it at our binary gives the same pages.
nice -n 19 swift build -c release --package-path "$scratch/checkouts/swift-argument-parser" \
  --scratch-path "$manual_scratch" --product generate-manual
generate_manual="$manual_scratch/release/generate-manual"

# --- The tree -----------------------------------------------------------------------
package_started=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/debian/flowmeter"   # where dpkg-shlibdeps expects the package tree
umask 022
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/etc/flowmeter" \
  "$root/usr/lib/sysusers.d" "$root/usr/share/man/man1" "$root/usr/share/doc/flowmeter" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/lintian/overrides"

install -m 0755 "$binary" "$root/usr/bin/flowmeter"
# As dh_strip does for executables: symbols and the .comment/.note sections go.
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/flowmeter"
install -m 0644 deploy/systemd/flowmeter.service "$root/usr/lib/systemd/system/flowmeter.service"
install -m 0644 packaging/flowmeter.yaml "$root/etc/flowmeter/flowmeter.yaml"
install -m 0644 packaging/debian/sysusers.conf "$root/usr/lib/sysusers.d/flowmeter.conf"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/flowmeter"

man="$root/usr/share/man/man1"
"$generate_manual" "$root/usr/bin/flowmeter" --multi-page --date "$release_date" \
  --authors "The FlowMeter authors" --output-directory "$man"
# generate-manual names pages flowmeter.db.audit.1 with NAME "flowmeter db
# audit", which man-db's whatis cannot parse. Use git's convention instead:
# flowmeter-db-audit(1), NAME flowmeter-db-audit, SYNOPSIS "flowmeter db audit".
# The built-in help subcommand gets no page.
rm -f "$man/flowmeter.help.1"
for page in "$man"/*.1; do
  base=$(basename "$page" .1)
  DASHED=${base//./-} COMMAND=${base//./ } perl -i -ne '
    $section = $1 if /^\.Sh "?([A-Z ]+)"?/;
    s/^\.Dt \S+/".Dt " . uc $ENV{DASHED}/e;
    s/^\.Nm .*/.Nm $ENV{DASHED}/ if $section eq "NAME";
    s/^\.Nm$/.Nm "$ENV{COMMAND}"/ if $section eq "SYNOPSIS";
    s/^(\.Xr )(\S+)/$1 . ($2 =~ tr{.}{-}r)/e;
    print unless /^\.Xr flowmeter-help /;' "$page"
  [ "$page" = "$man/${base//./-}.1" ] || mv "$page" "$man/${base//./-}.1"
done
# FILES (every page), EXIT STATUS (every page; the monitoring plugins' own in
# packaging/man/exit-status/PAGE.mdoc) and EXAMPLES (packaging/man/examples/PAGE.mdoc)
# go where mdoc(7) puts them, in its order: before SEE ALSO, else before AUTHORS.
for page in "$man"/*.1; do
  base=$(basename "$page" .1)
  extra=packaging/man/FILES.mdoc
  if [ -f "packaging/man/exit-status/$base.mdoc" ]; then extra="$extra packaging/man/exit-status/$base.mdoc"
  else extra="$extra packaging/man/EXIT-STATUS.mdoc"; fi
  [ -f "packaging/man/examples/$base.mdoc" ] && extra="$extra packaging/man/examples/$base.mdoc"
  # shellcheck disable=SC2086  # three file names at most, no spaces
  cat $extra > "$work/extra.mdoc"
  EXTRA="$work/extra.mdoc" perl -i -ne '
    BEGIN { local $/; open my $f, "<", $ENV{EXTRA} or die; $extra = <$f>; }
    if (!$done && /^\.Sh "?(SEE ALSO|AUTHORS)"?/) { print $extra; $done = 1 }
    print;
    END { die "no SEE ALSO or AUTHORS section\n" unless $done }' "$page"
done
gzip -9n "$man"/*.1

# Completion scripts are sourced, not run: the #! line argument-parser writes goes.
"$root/usr/bin/flowmeter" --generate-completion-script bash | sed '1{/^#!/d}' \
  > "$root/usr/share/bash-completion/completions/flowmeter"
"$root/usr/bin/flowmeter" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_flowmeter"
"$root/usr/bin/flowmeter" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/flowmeter.fish"

doc="$root/usr/share/doc/flowmeter"
install -m 0644 README.md "$doc/README.md"
gzip -9n "$doc/README.md"          # policy 12.3: documentation over 4 kB is compressed
# The documents --help, the manual pages and the README name as docs/NAME.md,
# at the same place relative to the README.
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"
for f in "$doc"/docs/*.md; do
  [ "$(stat -c %s "$f")" -le 4096 ] || gzip -9n "$f"
done
install -m 0644 packaging/debian/copyright "$doc/copyright"
install -m 0644 packaging/debian/changelog "$doc/changelog.Debian"
gzip -9n "$doc/changelog.Debian"

# --- Control files --------------------------------------------------------------------
# dpkg-shlibdeps wants a source tree with debian/control naming the package.
printf 'Source: flowmeter\n\nPackage: flowmeter\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e "$root/usr/bin/flowmeter" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# Packed relative relocations need glibc 2.36's loader (the binary asks for
# GLIBC_ABI_DT_RELR), which dpkg-shlibdeps's symbol tables do not know.
if readelf -V "$root/usr/bin/flowmeter" | grep -q GLIBC_ABI_DT_RELR; then
  depends=$(echo "$depends" | sed -E 's/libc6 \(>= 2\.(3[0-5]|[12][0-9]|[0-9])(\.[0-9]+)?\)/libc6 (>= 2.36)/')
fi
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@MAINTAINER@/$maintainer/" \
    packaging/debian/control.in > "$root/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/flowmeter_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
package_seconds=$((SECONDS - package_started))

# --- Checks -------------------------------------------------------------------------------
echo "== $deb ($(du -h "$deb" | cut -f1)); Depends: $depends, adduser"
# systemd-analyze verify needs the unit's binaries and targets installed:
# scripts/test_package.sh runs it after installing the package.
echo "== lintian"
# Errors and warnings fail the build (overrides in packaging/debian say why
# each accepted tag is fine); pedantic and info tags are shown, not fatal.
lintian --info --display-info --pedantic "$deb" | tee "$work/lintian.txt" || true
if grep -qE '^[EW]: ' "$work/lintian.txt"; then
  echo "package.sh: lintian reports errors or warnings (above)" >&2
  exit 1
fi
echo "== build ${build_seconds}s, manual pages and package ${package_seconds}s, total $((SECONDS - started))s"
