#!/usr/bin/env bash
# A real kube-apiserver (and etcd) for tests/test_kube_rollout.py, from Debian packages only
# (docs/design/model-rollout.md §1): no registry ships the binary, so it is built once per
# machine from bookworm's `kubernetes` source package (v1.20.2, with vendor/) using bookworm's
# Go 1.19, and etcd is taken from the `etcd-server` deb. Only the two binaries are kept:
#   ${STEADYEYE_KUBE_CACHE:-$HOME/.cache/steadyeye/kube}/<.dsc version>/{kube-apiserver,etcd}
#   ${STEADYEYE_KUBE_CACHE:-...}/current -> <.dsc version>   (what the tests look up)
# Idempotent: when cached it prints one line and returns at once. A cold build takes ~3-4 min
# on 2 cores (peak RSS ~1.3 GB, ~2 GB of scratch disk, removed afterwards). Needs apt-get (a
# Debian-like system with Debian's archive keyring); root is not needed.
# env: STEADYEYE_KUBE_CACHE, STEADYEYE_KUBE_DSC_VERSION, STEADYEYE_DEBIAN_MIRROR
set -euo pipefail

DSC_VERSION=${STEADYEYE_KUBE_DSC_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}
K8S_VERSION=v1.20.2 # what the source tree is, whatever Debian's version string says
MIRROR=${STEADYEYE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE_ROOT=${STEADYEYE_KUBE_CACHE:-$HOME/.cache/steadyeye/kube}
DEST=$CACHE_ROOT/$DSC_VERSION

log() { echo "install-kube-apiserver: $*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}
cached() { [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ]; }
point_current() {
  # A relative link, swapped atomically, so the tests find the binaries without knowing the key.
  ln -sfn "$DSC_VERSION" "$CACHE_ROOT/.current.new" && mv -Tf "$CACHE_ROOT/.current.new" \
    "$CACHE_ROOT/current"
}

if cached; then
  [ "$(readlink "$CACHE_ROOT/current" 2>/dev/null)" = "$DSC_VERSION" ] || point_current
  log "cached: $DEST"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian's archive"
mkdir -p "$CACHE_ROOT"
# One build at a time (two `make test` at once would each take 1.3 GB and 3 minutes).
exec 9>"$CACHE_ROOT/.lock"
flock 9
if cached; then
  point_current
  log "cached (built meanwhile): $DEST"
  exit 0
fi

START=$SECONDS
WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
cleanup() {
  # Go marks some cache files read-only; the scratch (source, Go, Go cache) never stays.
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { log "[$((SECONDS - START))s] $*"; }

# Debian images carry no deb-src lines: a private apt configuration, the system's untouched.
A=$WORK/apt
mkdir -p "$A/lists/partial" "$A/archives/partial"
printf 'deb %s bookworm main\ndeb-src %s bookworm main\n' "$MIRROR" "$MIRROR" >"$A/sources.list"
cat >"$A/apt.conf" <<EOF
Dir::Etc::SourceList "$A/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "/nonexistent";
Dir::State::Lists "$A/lists";
Dir::Cache "$A";
APT::Sandbox::User "$(id -un)";
EOF
export APT_CONFIG=$A/apt.conf

step "apt-get update (private lists, bookworm main + deb-src)"
apt-get update -qq >"$WORK/apt.log" 2>&1 || {
  cat "$WORK/apt.log" >&2
  die "apt-get update against $MIRROR failed"
}

cd "$WORK"
step "downloading source kubernetes=$DSC_VERSION (34.5 MB)"
apt-get source -qq --download-only "kubernetes=$DSC_VERSION" >"$WORK/apt.log" 2>&1 || {
  cat "$WORK/apt.log" >&2
  die "no source kubernetes=$DSC_VERSION in bookworm; set STEADYEYE_KUBE_DSC_VERSION to one" \
    "that \`apt-cache showsrc kubernetes\` lists (with the same private APT_CONFIG)"
}

step "downloading golang-1.19-go, golang-1.19-src, etcd-server debs (~90 MB)"
apt-get download -qq golang-1.19-go golang-1.19-src etcd-server >"$WORK/apt.log" 2>&1 || {
  cat "$WORK/apt.log" >&2
  die "apt-get download of Go 1.19 / etcd-server failed"
}
# Unpacked, not installed: works without root and leaves the system as it was.
ROOTFS=$WORK/rootfs
for deb in ./*.deb; do dpkg-deb -x "$deb" "$ROOTFS"; done
export GOROOT=$ROOTFS/usr/lib/go-1.19
[ -x "$GOROOT/bin/go" ] || die "no go binary in the unpacked golang-1.19-go deb"
[ -x "$ROOTFS/usr/bin/etcd" ] || die "no etcd binary in the unpacked etcd-server deb"
export PATH=$GOROOT/bin:$PATH GOCACHE=$WORK/gocache GOFLAGS= GOTOOLCHAIN=local
step "Go $(go env GOVERSION), etcd $("$ROOTFS/usr/bin/etcd" --version | head -1)"

step "unpacking the source"
dsc=$(ls ./kubernetes_*.dsc)
if command -v dpkg-source >/dev/null; then
  # Its gpgv note (no maintainer key here) is noise: apt already checked the files' hashes
  # against the signed Release file.
  dpkg-source -q -x "$dsc" src >"$WORK/unpack.log" 2>&1 || {
    cat "$WORK/unpack.log" >&2
    die "dpkg-source -x $dsc failed"
  }
else
  # The Debian patches touch only kubectl and cli-runtime; the orig tarball is the whole tree.
  mkdir src && tar xzf ./kubernetes_*.orig.tar.gz -C src --strip-components=1
fi

step "make gen_openapi (the openapi definitions are not in the tarball)"
(cd src && make gen_openapi >"$WORK/gen.log" 2>&1) || {
  tail -30 "$WORK/gen.log" >&2
  die "make gen_openapi failed"
}

step "go build ./cmd/kube-apiserver (GOPATH mode, as Kubernetes 1.20's hack/ does; ~3 min)"
G=$WORK/gopath
mkdir -p "$G/src/k8s.io" "$WORK/out"
ln -s "$WORK/src" "$G/src/k8s.io/kubernetes"
LD="-s -w"
for P in component-base/version client-go/pkg/version; do
  LD="$LD -X k8s.io/kubernetes/vendor/k8s.io/$P.gitVersion=$K8S_VERSION"
  LD="$LD -X k8s.io/kubernetes/vendor/k8s.io/$P.gitMajor=1 -X k8s.io/kubernetes/vendor/k8s.io/$P.gitMinor=20"
done
# -o must be absolute: a relative one is resolved from the symlink's target.
(cd "$G/src/k8s.io/kubernetes" &&
  GOPATH=$G GO111MODULE=off CGO_ENABLED=0 go build -trimpath -ldflags "$LD" \
    -o "$WORK/out/kube-apiserver" ./cmd/kube-apiserver >"$WORK/build.log" 2>&1) || {
  tail -30 "$WORK/build.log" >&2
  die "go build of kube-apiserver failed"
}
cp "$ROOTFS/usr/bin/etcd" "$WORK/out/etcd"
"$WORK/out/kube-apiserver" --version >/dev/null || die "the built kube-apiserver does not run"

# Into the cache by rename, so a half-copied folder is never taken for a cached one.
rm -rf "$DEST.new"
mv "$WORK/out" "$DEST.new"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
point_current
step "done: $DEST ($(du -sh "$DEST" | cut -f1)); $("$DEST/kube-apiserver" --version)"
