#!/usr/bin/env bash
# The container image's two steps, shared by the Dockerfile and the test that
# runs the compose topology natively (tests/it/compose.rs), so the two cannot
# drift:
#
#   scripts/container.sh build OUT [--debug]
#       builds dispatch-authz and the echo upstream (release; --debug for the
#       test, which reuses the test build) and puts them in OUT as
#       `dispatch-authz` and `echo-upstream`.
#   scripts/container.sh run [ARGS...]
#       the image's entry point: dispatch-authz with ARGS (default `serve`),
#       configured by DISPATCH_AUTHZ_CONFIG and DISPATCH_AUTHZ_* variables.
#       DISPATCH_AUTHZ_BIN names the binary (default: beside this script).
set -euo pipefail

cmd=${1:?usage: container.sh build OUT [--debug] | run [ARGS...]}
shift
case "$cmd" in
  build)
    out=${1:?usage: container.sh build OUT [--debug]}
    profile=release
    flags=(--release)
    if [ "${2:-}" = "--debug" ]; then profile=debug; flags=(); fi
    cargo build --locked "${flags[@]}" --bin dispatch-authz --example echo_upstream
    target=${CARGO_TARGET_DIR:-target}
    mkdir -p "$out"
    cp "$target/$profile/dispatch-authz" "$out/dispatch-authz"
    cp "$target/$profile/examples/echo_upstream" "$out/echo-upstream"
    cp "$0" "$out/container.sh"
    ;;
  run)
    bin=${DISPATCH_AUTHZ_BIN:-$(dirname "$0")/dispatch-authz}
    [ "$#" -gt 0 ] || set -- serve
    exec "$bin" "$@"
    ;;
  *)
    echo "container.sh: unknown command $cmd (build or run)" >&2
    exit 2
    ;;
esac
