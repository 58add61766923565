# A runnable pusher for a Nix-built image: `nix run` / `result/bin/push-<name> docker://REGISTRY/REPO:TAG [nixreg push flags]`.
# The destination is given at run time, so one build serves every registry; nothing is pushed at build time.
#
#   pushImage = import ./nix/push-image.nix { inherit (pkgs) writeShellScriptBin; nixreg = pkgs.callPackage ./nix/package.nix { }; };
#   pushApp = pushImage { image = pkgs.dockerTools.streamLayeredImage { name = "app"; contents = [ pkgs.hello ]; }; };
#
# What to push, exactly one of:
# - image: a streamLayeredImage result (its `conf` passthru) or a buildLayeredImage result (its `stream.conf`);
# - conf: a streamLayeredImage conf.json;
# - paths: store paths, layered like streamLayeredImage by `nixreg push --path` when the script runs (closure from
#   the local store; `config` is the image config, like streamLayeredImage's `config` attribute).
# `--output FILE` (or -o) writes the docker-archive too; given without a docker:// destination, the script only
# writes it (`nixreg stream`, or `nixreg build` for paths): the bytes streamLayeredImage's script would print.
#
# Secrets never enter the store: credentials come at run time from REGISTRY_AUTH_FILE / DOCKER_CONFIG /
# ~/.docker/config.json, or --authfile/--creds on the command line. extraArgs are baked in: keep them secret-free.
#
# The nixpkgs pieces are arguments, so it evaluates without nixpkgs; `writeShellScriptBin name text` must make
# `$out/bin/<name>` running `text` with a POSIX shell (nixpkgs' does, with bash).
{ writeShellScriptBin, nixreg }:

{ image ? null
, conf ? null
, paths ? [ ]
, config ? { }
, name ? null
, extraArgs ? [ ]
}:

let
  noContext = s: builtins.unsafeDiscardStringContext (toString s);
  q = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  words = xs: builtins.concatStringsSep " " (map q xs);
  conf' =
    if conf != null then conf
    else if image == null then null
    else if image ? conf then image.conf
    else if image ? stream && image.stream ? conf then image.stream.conf
    else throw "pushImage: `image` has neither a `conf` (streamLayeredImage) nor a `stream.conf` (buildLayeredImage) passthru";
  sources = (if conf' != null then 1 else 0) + (if paths != [ ] then 1 else 0);
  imageName =
    if image != null && image ? imageName then image.imageName
    else if name != null then name
    # /nix/store/<32 chars>-hello-2.12 → hello
    else if paths != [ ] then (builtins.parseDrvName (builtins.substring 33 4096 (baseNameOf (noContext (builtins.head paths))))).name
    else "image";
  name' = noContext (if name != null then name else baseNameOf imageName);
  bin = "${nixreg}/bin/nixreg";

  # The store paths are in the script's text, so they stay alive as long as the script does. The config reaches
  # nixreg on stdin (`--config /dev/stdin`): no temporary file to clean up.
  pathFlags = builtins.concatStringsSep " " (map (p: "--path ${q p}") paths);
  withConfig = cmd: if config == { } then cmd else "printf '%s' ${q (builtins.toJSON config)} | ${cmd} --config /dev/stdin";
  pushCmd =
    if conf' != null then "${bin} push ${q "${conf'}"} ${words extraArgs} \"$@\""
    # with --path the image name in --output defaults to the destination's repository and tag
    else withConfig "${bin} push ${pathFlags} ${words extraArgs} \"$@\"";
  outputOnlyCmd =
    if conf' != null then "${bin} stream ${q "${conf'}"} \"$@\""
    else withConfig "${bin} build --name ${q imageName} ${pathFlags} \"$@\"";
in
if sources != 1 then throw "pushImage: give exactly one of `image`, `conf` or `paths`"
else writeShellScriptBin "push-${name'}" ''
  set -eu
  has_dest=""
  has_output=""
  for a in "$@"; do
    case "$a" in
      docker://*) has_dest=1 ;;
      -o|--output|-o=*|--output=*) has_output=1 ;;
    esac
  done
  if [ -n "$has_dest" ]; then
    ${pushCmd}
  elif [ -n "$has_output" ]; then
    ${outputOnlyCmd}
  else
    echo "usage: push-${name'} docker://REGISTRY/REPO[:TAG] [--output FILE] [nixreg push flags]" >&2
    echo "       push-${name'} --output FILE    (only write the docker-archive)" >&2
    exit 2
  fi
''
