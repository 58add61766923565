# dockerTools.pullImage, backed by `nixreg pull` instead of skopeo: same arguments, same fixed-output hash
# (flat sha256 of the docker-archive, byte-identical to skopeo's), so an existing call switches with no hash change.
#
# The nixpkgs pieces it needs are arguments, so it evaluates without nixpkgs:
#   pullImage = import ./nix/pull-image.nix { inherit (pkgs) runCommand stdenv; nixreg = pkgs.callPackage ./nix/package.nix { }; };
# `runCommand name env script` must build `script` with /bin/sh semantics (nixpkgs' runCommand does).
# The default `arch` is the target's, as nixpkgs' pullImage takes it (`go.GOARCH`, else `stdenv.hostPlatform`);
# callPackage passes both. Without them `arch` must be given: `builtins.currentSystem` is the evaluating machine's
# system, and absent under pure evaluation (flakes).
{ runCommand, nixreg, cacert ? null, go ? null, stdenv ? null }:

{ imageName
, imageDigest
, hash ? ""
, sha256 ? ""
, os ? "linux"
, arch ? null
, variant ? ""
, finalImageName ? imageName
, finalImageTag ? "latest"
, tlsVerify ? true
, name ? null
  # Beyond nixpkgs (https://github.com/NixOS/nixpkgs/issues/30723): opt-in credential variables passed from the nix daemon's environment, e.g.
  # [ "REGISTRY_AUTH_FILE" ] or [ "DOCKER_CONFIG" ]; the file they name must be reachable from the build
  # (extra-sandbox-paths). Secrets stay out of the store: only the variable's value (a path) crosses.
, credentialEnvVars ? [ ]
}:

let
  fixName = s: builtins.replaceStrings [ "/" ":" ] [ "-" "-" ] s;
  goArch = {
    "x86_64-linux" = "amd64"; "aarch64-linux" = "arm64"; "i686-linux" = "386"; "armv7l-linux" = "arm";
    "armv6l-linux" = "arm"; "powerpc64le-linux" = "ppc64le"; "s390x-linux" = "s390x"; "riscv64-linux" = "riscv64";
    "x86_64-darwin" = "amd64"; "aarch64-darwin" = "arm64";
  };
  defaultArch =
    if go != null && go ? GOARCH then go.GOARCH
    else if stdenv != null && stdenv ? hostPlatform then
      goArch.${stdenv.hostPlatform.system} or (throw "pullImage: no GOARCH known for ${stdenv.hostPlatform.system}; pass `arch`")
    else throw "pullImage: pass `arch` (e.g. \"amd64\"), or `go` / `stdenv` when importing nix/pull-image.nix (callPackage does)";
  arch' = if arch == null then defaultArch else arch;
  name' = if name == null then fixName "docker-image-${finalImageName}-${finalImageTag}.tar" else name;
  hashAttrs =
    if hash != "" && sha256 != "" then throw "fetcher called with mutually-incompatible arguments: hash, sha256"
    else if hash != "" then { outputHash = hash; outputHashAlgo = "sha256"; }
    else if sha256 != "" then { outputHash = sha256; outputHashAlgo = "sha256"; }
    # no hash: Nix's fake hash, so the build fails with the `got: sha256-…` line to copy (as fetchurl does)
    else { outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; outputHashAlgo = "sha256"; };
  proxyVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy"
                "HTTP_PROXY" "HTTPS_PROXY" "FTP_PROXY" "ALL_PROXY" "NO_PROXY" "NIX_SSL_CERT_FILE" ];
  q = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
in
runCommand name' ({
  inherit imageDigest;
  imageName = finalImageName;
  imageTag = finalImageTag;
  outputHashMode = "flat";
  impureEnvVars = proxyVars ++ credentialEnvVars;
} // hashAttrs // (if cacert != null then { SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt"; } else { })) ''
  ${nixreg}/bin/nixreg pull ${q imageName} --digest ${q imageDigest} \
    --os ${q os} --arch ${q arch'} ${if variant != "" then "--variant ${q variant}" else ""} \
    --final-image-name ${q finalImageName} --final-image-tag ${q finalImageTag} \
    --tls-verify=${if tlsVerify then "true" else "false"} --quiet --force -o "$out"
''
