#!/usr/bin/env bash
# Installs the Debian packages the test suites run against, when they are missing (CI and fresh machines run as root).
# docker-registry: distribution 2.8, the real registry; skopeo 1.9.3: byte-identity reference; nix-bin: nix-hash and
# real store paths; umoci: unpacks images to compare trees; apache2-utils: htpasswd (bcrypt) for Basic auth tests;
# openssl: self-signed certificates for the TLS and token-auth tests; zstd: makes and checks zstd test layers;
# python3 (on the machine): its zlib module is the system zlib the gzip reference bytes are checked against;
# gcc, libzstd-dev, libisal-dev, zlib1g-dev: the optional native layer decoders and gzip encoder
# (scripts/build-native.mjs; without them nixreg falls back to fzstd, node:zlib and pako, same bytes).
set -euo pipefail
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v nix-hash >/dev/null || need+=(nix-bin)
command -v umoci >/dev/null || need+=(umoci)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v zstd >/dev/null || need+=(zstd)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/zstd.h ] || need+=(libzstd-dev)
[ -e /usr/include/isa-l/igzip_lib.h ] || need+=(libisal-dev)
[ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-system-deps: missing ${need[*]} and cannot install them here (needs root on Debian); suites that use them will FAIL" >&2
  exit 0
fi
echo "ensure-system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
