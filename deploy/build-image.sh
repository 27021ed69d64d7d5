#!/usr/bin/env bash
# Builds the scimload container image with podman (or docker: ENGINE=docker) from the
# release binary, without pulling anything: the context is a root file system assembled
# here (see deploy/Containerfile for what goes in and why).
#
#   deploy/build-image.sh [TAG]        build (default tag scimload:VERSION)
#   deploy/build-image.sh --check      build, then check the image without running it:
#                                      save it, unpack its layers, and run the binary
#                                      found there (chrooted into the unpacked image, so
#                                      its own libraries, /etc/hosts and nsswitch.conf
#                                      are the ones used) with --version and a 2-second
#                                      bench against a local `scimload serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE:-podman}
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag=${1:-scimload:$version}

bin=target/release/scimload
if [[ ! -x $bin || -n ${REBUILD:-} ]]; then
  cargo build --release --quiet
fi

ctx=$(mktemp -d /tmp/scimload-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root"/usr/local/bin "$root"/etc/ssl/certs "$root"/home/scimload "$root"/tmp
# Line tables stay in the build's binary (for profiles); the image needs none.
objcopy --strip-debug "$bin" "$root/usr/local/bin/scimload"
# The libraries it links and the loader, at the paths the binary asks for.
ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cat > "$root/etc/nsswitch.conf" <<'NSS'
hosts: files dns
passwd: files
group: files
NSS
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
printf 'root:x:0:0:root:/root:/sbin/nologin\nscimload:x:10001:10001:scimload:/home/scimload:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nscimload:x:10001:\n' > "$root/etc/group"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
chown -R 10001:10001 "$root/home/scimload"
chmod 1777 "$root/tmp"
cp deploy/Containerfile "$ctx/"

"$ENGINE" build --quiet -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "built $tag ($("$ENGINE" image inspect "$tag" --format '{{.Size}}') bytes)"

if (( check )); then
  out=$(mktemp -d /tmp/scimload-image-check.XXXXXX); srv=
  trap 'rm -rf "$ctx" "$out"; kill $srv 2>/dev/null || true' EXIT
  "$ENGINE" save -q --format docker-archive -o "$out/image.tar" "$tag"
  mkdir -p "$out/archive" "$out/rootfs"
  tar -xf "$out/image.tar" -C "$out/archive"
  # The manifest lists the layers in order; unpack them over one another.
  python3 - "$out/archive" "$out/rootfs" <<'PY'
import json, sys, tarfile, os
archive, rootfs = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(archive, "manifest.json")))[0]
for layer in manifest["Layers"]:
    with tarfile.open(os.path.join(archive, layer)) as t:
        t.extractall(rootfs)
config = json.load(open(os.path.join(archive, manifest["Config"])))["config"]
assert config["Entrypoint"] == ["/usr/local/bin/scimload"], config["Entrypoint"]
assert config["User"].split(":")[0] == "10001", config["User"]
print("image config: entrypoint", config["Entrypoint"], "user", config["User"])
PY
  [[ -x $out/rootfs/usr/local/bin/scimload ]] || { echo "FAIL: no binary in the image" >&2; exit 1; }
  run() { chroot --userspec=10001:10001 "$out/rootfs" /usr/local/bin/scimload "$@"; }
  got=$(run --version)
  [[ $got == "scimload $version" ]] || { echo "FAIL: --version printed '$got'" >&2; exit 1; }
  echo "binary in the image: $got"
  # A server outside the image; the client inside it reaches it by name (localhost
  # through the image's /etc/hosts and nsswitch.conf).
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SCIM_TOKEN=imagecheck "$bin" serve --listen "127.0.0.1:$port" >/dev/null 2>&1 & srv=$!
  for _ in $(seq 50); do curl -fs -o /dev/null -H 'Authorization: Bearer imagecheck' "http://127.0.0.1:$port/ServiceProviderConfig" && break; sleep 0.1; done
  SCIM_TOKEN=imagecheck run bench get --target "http://localhost:$port" --rate 200 \
    --duration 2s --users 50 --connections 4 --report /tmp/bench --json > "$out/bench.json"
  python3 - "$out/bench.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ok, planned = s["ok"], s["planned"]
assert planned >= 390 and ok == planned and s["errors"] == 0, (planned, ok, s["errors"])
print(f"2 s bench get from inside the image: {ok}/{planned} requests answered, p99 {s['operations']['get_user']['response']['p99_ms']} ms")
PY
  # TLS from inside the image: a private CA given with --ca-cert, and the hostname
  # checked against the certificate (issued for localhost) after the image resolved it.
  bash scripts/make-test-ca.sh "$out"
  cp "$out/ca.pem" "$out/rootfs/tmp/ca.pem"
  tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SCIM_TOKEN=imagecheck "$bin" serve --listen "127.0.0.1:$tport" --tls-cert "$out/srv.pem" --tls-key "$out/srv.key" >/dev/null 2>&1 & tsrv=$!
  trap 'rm -rf "$ctx" "$out"; kill $srv $tsrv 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -fs -o /dev/null --cacert "$out/ca.pem" -H 'Authorization: Bearer imagecheck' "https://localhost:$tport/ServiceProviderConfig" && break; sleep 0.1; done
  SCIM_TOKEN=imagecheck run bench get --target "https://localhost:$tport" --ca-cert /tmp/ca.pem \
    --rate 100 --duration 1s --users 20 --connections 2 --report /tmp/bench-tls --json > "$out/tls.json"
  python3 - "$out/tls.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ok"] == s["planned"] > 0 and s["errors"] == 0, s
print(f"HTTPS bench from inside the image (--ca-cert, hostname localhost): {s['ok']}/{s['planned']} answered")
PY
  if SCIM_TOKEN=imagecheck run bench get --target "https://localhost:$tport" --duration 1s --quiet 2>"$out/refused.txt"; then
    echo "FAIL: a certificate from an unknown CA was accepted inside the image" >&2; exit 1
  fi
  grep -q -i "certificate" "$out/refused.txt" || { echo "FAIL: the refusal does not name the certificate: $(cat "$out/refused.txt")" >&2; exit 1; }
  echo "without --ca-cert the image's client refuses the unknown CA: $(head -c 120 "$out/refused.txt")"
  echo "image check passed"
fi
