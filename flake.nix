# Flake front-end over default.nix (plain Nix stays the primary interface; no flake.lock is committed, so the
# first `nix build` pins nixpkgs for you).
#   nix build github:OWNER/nixreg          → result/bin/nixreg
#   nix run github:OWNER/nixreg -- pull …
#   nixreg.lib.${system}.pullImage { … } / pushImage { image = …; }
{
  description = "nixreg: OCI / Docker Registry HTTP API V2 for Nix users";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f (import ./. { pkgs = nixpkgs.legacyPackages.${system}; }));
    in
    {
      packages = forAll (nixreg: { default = nixreg; nixreg = nixreg; });
      apps = forAll (nixreg: { default = { type = "app"; program = "${nixreg}/bin/nixreg"; }; });
      lib = forAll (nixreg: { inherit (nixreg) pullImage pushImage; });
    };
}
