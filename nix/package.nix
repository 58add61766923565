# nixreg as a Nix package: `nix-build` (../default.nix) gives result/bin/nixreg.
#
# npm dependencies come through importNpmLock: one fixed-output fetch per package, hashed by the `integrity` of
# package-lock.json, so there is no single npmDepsHash to update whenever the lock changes.
{ lib, buildNpmPackage, importNpmLock, nodejs_20, zstd, isa-l }:

let
  root = toString ./..;
  package = builtins.fromJSON (builtins.readFile ../package.json);
  lock = builtins.fromJSON (builtins.readFile ../package-lock.json);

  # What the build needs, nothing else (no node_modules/, dist/, tests, fixtures). `.gitignore` stays out on
  # purpose: it lists dist/, and `npm pack`, which npmInstallHook uses to choose the installed files, would then
  # leave the compiled CLI out of the package (package.json has no "files" list).
  keep = [ "package.json" "package-lock.json" "tsconfig.json" "bin" "src" "scripts" "mock-registry" "LICENSE" ];
  src = builtins.path {
    path = ./..;
    name = "nixreg-source";
    filter = path: type:
      let rel = builtins.substring (builtins.stringLength root + 1) 4096 (toString path);
      in builtins.elem (builtins.head (builtins.split "/" rel)) keep;
  };

  # The lock is written with npm's omit-lockfile-registry-resolved (no "resolved" URLs: npm derives them from the
  # registry it is configured with). importNpmLock only fetches entries that have one, so put back the URL npm
  # would use with the default registry; the per-package `integrity` still pins the bytes.
  registry = "https://registry.npmjs.org";
  withResolved = key: m:
    if key == "" || m ? resolved || !(m ? integrity) || m.link or false then m
    else
      let
        name = m.name or (builtins.head (builtins.match ".*node_modules/(.+)" key));
      in m // { resolved = "${registry}/${name}/-/${baseNameOf name}-${m.version}.tgz"; };
  packageLock = lock // { packages = builtins.mapAttrs withResolved lock.packages; };
in
buildNpmPackage {
  pname = package.name;
  inherit (package) version;
  inherit src;
  nodejs = nodejs_20;
  npmDeps = importNpmLock { npmRoot = src; inherit package packageLock; };
  npmConfigHook = importNpmLock.npmConfigHook;
  # The optional native layer decoders (scripts/build-native.mjs) link against these; the stdenv's cc builds them.
  buildInputs = [ zstd isa-l ];
  # `npm run build`: the native decoders, tsc, then the esbuild bundle bin/nixreg.js prefers.
  # The test suite needs a registry, skopeo and Nix itself: it runs in CI, not in this build.
  doCheck = false;
  passthru = { inherit packageLock; };
  meta = {
    inherit (package) description;
    license = lib.licenses.mit;
    mainProgram = "nixreg";
  };
}
