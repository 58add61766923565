# nixreg for Nix users without flakes:
#   nix-build                          → result/bin/nixreg
#   (import ./. { }).pullImage { ... } → dockerTools.pullImage's interface, fetched by nixreg
#   (import ./. { }).pushImage { image = <streamLayeredImage result>; } → result/bin/push-<name> DESTINATION
{ pkgs ? import <nixpkgs> { } }:

let
  nixreg = pkgs.callPackage ./nix/package.nix { };
in
# still the derivation (nix-build builds it), with the two functions wired to it
nixreg // {
  pullImage = import ./nix/pull-image.nix { inherit (pkgs) runCommand cacert stdenv; inherit nixreg; };
  pushImage = import ./nix/push-image.nix { inherit (pkgs) writeShellScriptBin; inherit nixreg; };
}
