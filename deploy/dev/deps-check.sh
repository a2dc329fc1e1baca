#!/usr/bin/env bash
# deps-check: the one-way dependency rules of DESIGN.md and STYLE.md.
#   deny:        no import, direct or indirect, of the given packages
#   deny_direct: no direct import (used for grpc, which the generated API
#                package itself imports)
set -euo pipefail
cd "$(dirname "$0")/../.."
mod=github.com/pcnode/pcnode
fail=0
check() { # check <deps|imports> <package pattern> <forbidden prefix>...
  local how=$1 pkgs=$2; shift 2
  local fmt='{{join .Imports "\n"}}'
  for p in $(go list "$pkgs" 2>/dev/null); do
    if [ "$how" = deps ]; then deps=$(go list -deps -f '{{.ImportPath}}' "$p"); else deps=$(go list -f "$fmt" "$p"); fi
    for bad in "$@"; do
      if grep -qE "^${bad}(/|$)" <<<"$deps"; then
        echo "deps-check: $p must not import $bad ($how)"; fail=1
      fi
    done
  done
}
check deps    "./client/..."      "$mod/daemon" "$mod/store" "$mod/gpu"
check deps    "./daemon/spec/..." "$mod/proto" "google.golang.org/grpc" "go.etcd.io/bbolt" "github.com/containerd"
check deps    "./daemon/sched/..." "$mod/proto" "google.golang.org/grpc" "go.etcd.io/bbolt" "github.com/containerd"
check deps    "./store/..."       "$mod/daemon" "$mod/gpu" "github.com/containerd"
check deps    "./gpu/..."         "$mod/daemon" "$mod/store" "go.etcd.io/bbolt"
check deps    "./daemon/metrics/..." "$mod/daemon/runtime" "$mod/daemon/sched" "$mod/daemon/logs" "$mod/store" "$mod/gpu" "go.etcd.io/bbolt" "github.com/containerd"
# daemon imports metrics, never the other way (daemon/config is allowed).
if go list -deps ./daemon/metrics/... | grep -qx "$mod/daemon"; then
  echo "deps-check: daemon/metrics must not import $mod/daemon"; fail=1
fi
check imports "./store/..."       "google.golang.org/grpc"
check imports "./gpu/..."         "google.golang.org/grpc"
# One package doc per library package, starting "Package x owns" (STYLE.md).
for line in $(go list -f '{{.Name}}:{{.Dir}}' ./... | grep -v -e '^main:' -e '/proto/'); do
  name=${line%%:*} dir=${line#*:}
  n=$(grep -l "^// Package $name owns" "$dir"/*.go 2>/dev/null | grep -vc '_test\.go$' || true)
  if [ "$n" != 1 ]; then
    echo "deps-check: ${dir#$PWD/} has $n package docs starting \"// Package $name owns\", want 1"; fail=1
  fi
done
exit $fail
