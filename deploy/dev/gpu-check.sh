#!/usr/bin/env bash
# gpu-check.sh — check pcnode on a machine with an NVIDIA GPU, in under five
# minutes, and print a short report (PASS/FAIL/SKIP per step).
#
# Needs root and Go. It:
#   1. looks for an NVIDIA GPU (nvidia-smi -L, /dev/nvidia<N>);
#   2. builds pcnoded and pcnode-cli (make build);
#   3. runs the real-NVML test (go test -run '^TestRealNVML$' ./gpu/nvmlgpu),
#      which exercises the machine's libnvidia-ml;
#   4. starts a private containerd (as deploy/dev/test.sh does; containerd and
#      runc are installed with apt-get when missing) and pcnoded on it, with
#      [gpu] backend = "nvml" (on a machine without a GPU: "auto"), its own
#      state directory, socket and namespace, all removed on exit;
#   5. prints `pcnode-cli node` and checks that the GPUs are listed;
#   6. runs a CPU task of the test image (internal/testimage, built here);
#   7. when a CDI spec names the GPU by UUID (nvidia-ctk cdi list, /etc/cdi,
#      /var/run/cdi; or nvidia-ctk is there to generate one, into the private
#      directory only), runs a one-GPU task that lists /dev and its
#      environment, and checks that it sees exactly its GPU: one
#      /dev/nvidia<N>, the GPU's minor number when nvidia-smi says it, and
#      NVIDIA_VISIBLE_DEVICES = the UUID of the GPU it was given.
#
# Exit status: 0 every step passed; 1 a step failed; 2 no NVIDIA GPU on this
# machine (the steps that need none passed); 3 a GPU but no CDI spec for it,
# so the one-GPU task did not run (the rest passed).
#
# Environment: GPU_CHECK_KEEP=1 keeps the temporary directory (logs, config).
set -uo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/go/bin"
start=$SECONDS

say() { printf '==> %s\n' "$*"; }
die() { printf 'gpu-check.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (it starts containerd and runs containers): sudo $0"
command -v go >/dev/null || die "go is not on PATH"

report=()
failed=0
step() { # step NAME PASS|FAIL|SKIP DETAIL
  report+=("$(printf '%-5s %-16s %s' "$2" "$1" "$3")")
  printf '%-5s %-16s %s\n' "$2" "$1" "$3"
  [ "$2" != FAIL ] || failed=1
}

tmp=$(mktemp -d /tmp/pcnode-gpu-check.XXXXXX)
chmod 0755 "$tmp"
sock=$tmp/containerd.sock
api=$tmp/pcnoded.sock
ctr_pid=
pcnoded_pid=

finish() {
  local rc=$?
  set +e
  if [ -n "$pcnoded_pid" ] && kill -0 "$pcnoded_pid" 2>/dev/null; then
    kill -TERM "$pcnoded_pid"
    for _ in $(seq 100); do kill -0 "$pcnoded_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pcnoded_pid" 2>/dev/null
  fi
  if [ -n "$ctr_pid" ] && kill -0 "$ctr_pid" 2>/dev/null; then
    for ns in $(timeout 20 ctr --address "$sock" namespaces ls -q 2>/dev/null); do
      for task in $(timeout 20 ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
        timeout 20 ctr --address "$sock" -n "$ns" tasks kill -s SIGKILL "$task" >/dev/null 2>&1
        timeout 20 ctr --address "$sock" -n "$ns" tasks rm -f "$task" >/dev/null 2>&1
      done
    done
    kill -TERM "$ctr_pid"
    for _ in $(seq 100); do kill -0 "$ctr_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ctr_pid" 2>/dev/null
    wait "$ctr_pid" 2>/dev/null
  fi
  for pid in $(pgrep -f -- "-address $sock( |\$)" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  awk -v p="$tmp/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  if [ "${GPU_CHECK_KEEP:-}" = 1 ]; then echo "gpu-check.sh: kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. a GPU? -------------------------------------------------------------
gpu=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >"$tmp/nvidia-smi.txt" 2>&1 && grep -q '^GPU ' "$tmp/nvidia-smi.txt"; then
  gpu=1
  step gpu PASS "$(grep -c '^GPU ' "$tmp/nvidia-smi.txt") GPU(s): $(head -1 "$tmp/nvidia-smi.txt")"
elif compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
  gpu=1
  step gpu PASS "device nodes $(echo /dev/nvidia[0-9]*) (no nvidia-smi)"
else
  step gpu SKIP "NO NVIDIA GPU on this machine (no nvidia-smi -L output, no /dev/nvidia<N>): the GPU steps cannot run"
fi

# --- 2. build --------------------------------------------------------------
if timeout 240 make build >"$tmp/build.log" 2>&1; then
  step build PASS "bin/pcnoded, bin/pcnode-cli"
else
  step build FAIL "make build failed: $(tail -3 "$tmp/build.log" | tr '\n' ' ')"
fi

# --- 3. the real-NVML test -------------------------------------------------
timeout 240 go test -count=1 -run '^TestRealNVML$' -v ./gpu/nvmlgpu >"$tmp/nvml-test.log" 2>&1
nvml_rc=$?
if [ "$nvml_rc" -ne 0 ]; then
  step nvml-test FAIL "go test -run TestRealNVML ./gpu/nvmlgpu: $(grep -m3 -E 'real_test.go|FAIL|panic' "$tmp/nvml-test.log" | tr '\n' ' ')"
elif grep -q -- '--- SKIP: TestRealNVML' "$tmp/nvml-test.log"; then
  why=$(grep -m1 'real_test.go:' "$tmp/nvml-test.log" | sed 's/^ *//')
  if [ "$gpu" = 1 ]; then
    step nvml-test FAIL "skipped on a machine with a GPU: $why"
  else
    step nvml-test SKIP "no driver: $why"
  fi
else
  step nvml-test PASS "$(grep -m1 'driver ' "$tmp/nvml-test.log" | sed 's/^ *//')"
fi
[ -x bin/pcnoded ] && [ -x bin/pcnode-cli ] || { step pcnoded FAIL "no binaries to run"; exit 1; }

# --- 4. containerd and pcnoded ----------------------------------------------
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$tmp/apt.log" 2>&1; then
    apt-get update >>"$tmp/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$tmp/apt.log" 2>&1
  fi
fi
cat >"$tmp/containerd.toml" <<EOF
version = 2
root = "$tmp/containerd-root"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/containerd-opt"
EOF
if command -v containerd >/dev/null && command -v runc >/dev/null && command -v ctr >/dev/null; then
  containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
  ctr_pid=$!
  deadline=$((SECONDS + 30))
  until [ -S "$sock" ] && timeout 5 ctr --address "$sock" version >/dev/null 2>&1; do
    if ! kill -0 "$ctr_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then ctr_pid_dead=1; break; fi
    sleep 0.2
  done
  if [ -z "${ctr_pid_dead:-}" ]; then
    step containerd PASS "private containerd $(timeout 5 ctr --address "$sock" version | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}') at $sock"
  else
    step containerd FAIL "did not come up: $(tail -3 "$tmp/containerd.log" | tr '\n' ' ')"
    exit 1
  fi
else
  step containerd FAIL "containerd, ctr and runc must be on PATH (apt-get log: $tmp/apt.log)"
  exit 1
fi

# CDI: a spec that names the GPU by UUID, the name pcnoded injects.
cdi_dirs='"/etc/cdi", "/var/run/cdi"'
cdi=none
if [ "$gpu" = 1 ]; then
  if command -v nvidia-ctk >/dev/null && nvidia-ctk cdi list 2>/dev/null | grep -q 'nvidia.com/gpu=GPU-'; then
    cdi="present (nvidia-ctk cdi list)"
  elif grep -rqs 'GPU-' /etc/cdi /var/run/cdi 2>/dev/null; then
    cdi="present in /etc/cdi or /var/run/cdi"
  elif command -v nvidia-ctk >/dev/null; then
    mkdir -p "$tmp/cdi"
    if nvidia-ctk cdi generate --device-name-strategy=uuid --output="$tmp/cdi/nvidia.yaml" >"$tmp/cdi-generate.log" 2>&1; then
      cdi="generated by nvidia-ctk into $tmp/cdi (the system's spec dirs untouched)"
      cdi_dirs="\"$tmp/cdi\""
    else
      cdi="none (nvidia-ctk cdi generate failed: $(tail -1 "$tmp/cdi-generate.log"))"
    fi
  fi
fi

backend=auto
[ "$gpu" = 1 ] && backend=nvml
mkdir -p "$tmp/state" "$tmp/data"
cat >"$tmp/pcnoded.toml" <<EOF
[node]
name = "gpu-check"
state_dir = "$tmp/state"

[api]
socket = "$api"

[containerd]
address = "$sock"
namespace = "pcnode-gpu-check"

[paths]
data_roots = ["$tmp/data"]

[resources]
reserved_cpu = "100m"
reserved_memory = "256Mi"
default_cpu = "100m"
default_memory = "128Mi"

[gpu]
backend = "$backend"
cdi_spec_dirs = [$cdi_dirs]
EOF
bin/pcnoded --config "$tmp/pcnoded.toml" --log-level info >"$tmp/pcnoded.log" 2>&1 &
pcnoded_pid=$!
export PCNODE_ADDRESS=$api
cli() { timeout 120 "$repo/bin/pcnode-cli" "$@"; }
deadline=$((SECONDS + 30))
until cli node >/dev/null 2>&1; do
  if ! kill -0 "$pcnoded_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    step pcnoded FAIL "not serving: $(tail -3 "$tmp/pcnoded.log" | tr '\n' ' ')"
    exit 1
  fi
  sleep 0.2
done
step pcnoded PASS "serving at $api, [gpu] backend = \"$backend\""

# --- 5. pcnode-cli node -----------------------------------------------------
echo "---- pcnode-cli node ----"
cli node | tee "$tmp/node.txt"
echo "-------------------------"
cli -o json node >"$tmp/node.json" 2>&1
node_gpus=$(grep -o '"uuid": *"GPU-[^"]*"' "$tmp/node.json" | sed 's/.*"\(GPU-[^"]*\)"/\1/')
n_node=$(printf '%s\n' "$node_gpus" | grep -c '^GPU-')
got_backend=$(sed -n 's/.*"gpuBackend": *"\([^"]*\)".*/\1/p' "$tmp/node.json")
if [ "$gpu" = 1 ]; then
  n_smi=$(grep -c '^GPU ' "$tmp/nvidia-smi.txt" 2>/dev/null || echo 0)
  if [ "$got_backend" != nvml ] || [ "$n_node" -eq 0 ] || { [ "$n_smi" -gt 0 ] && [ "$n_node" -ne "$n_smi" ]; }; then
    step node FAIL "backend \"$got_backend\", $n_node GPU(s) listed; nvidia-smi lists $n_smi"
  else
    step node PASS "backend nvml, $n_node GPU(s): $(printf '%s ' $node_gpus)"
  fi
else
  step node PASS "backend \"$got_backend\", no GPUs (as expected without one)"
fi

# --- 6. a CPU task of the test image -----------------------------------------
image=pcnode.local/gpu-check:1
if timeout 180 go run ./internal/testimage/cmd/pctestimage -o "$tmp/image.tar" -name "$image" >"$tmp/image.log" 2>&1 &&
  cli image import "$tmp/image.tar" >>"$tmp/image.log" 2>&1; then
  cat >"$tmp/cpu-task.json" <<EOF
{"name": "gpu-check cpu", "image": "$image", "taskTemplate": "steps",
 "env": [{"name": "PCTEST_STEPS", "value": "echo pcnode-gpu-check-cpu-ok"}]}
EOF
  if cli run "$tmp/cpu-task.json" >"$tmp/cpu-task.out" 2>&1 && grep -q pcnode-gpu-check-cpu-ok "$tmp/cpu-task.out"; then
    step cpu-task PASS "test image imported, a task ran and printed its line"
  else
    step cpu-task FAIL "$(tail -3 "$tmp/cpu-task.out" | tr '\n' ' ')"
  fi
else
  step cpu-task FAIL "building or importing the test image: $(tail -3 "$tmp/image.log" | tr '\n' ' ')"
fi

# --- 7. a one-GPU task -------------------------------------------------------
no_cdi=0
if [ "$gpu" = 0 ]; then
  step gpu-task SKIP "no NVIDIA GPU"
elif [ "$cdi" = none ] || [ "${cdi#none}" != "$cdi" ]; then
  no_cdi=1
  step gpu-task SKIP "no CDI spec names the GPU by UUID: $cdi (nvidia-ctk cdi generate --device-name-strategy=uuid --output=/etc/cdi/nvidia.yaml)"
else
  cat >"$tmp/gpu-task.json" <<EOF
{"name": "gpu-check gpu", "image": "$image", "taskTemplate": "steps",
 "env": [{"name": "PCTEST_STEPS", "value": "env -- ls /dev"}],
 "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}}
EOF
  id=$(cli submit "$tmp/gpu-task.json" 2>"$tmp/gpu-submit.err")
  if [ -z "$id" ]; then
    step gpu-task FAIL "submit: $(tr '\n' ' ' <"$tmp/gpu-submit.err")"
  else
    cli run --attach "$id" >"$tmp/gpu-task.out" 2>&1
    run_rc=$?
    cli -o json get "$id" >"$tmp/gpu-task.json.out" 2>&1
    given=$(grep -o '"uuid": *"GPU-[^"]*"' "$tmp/gpu-task.json.out" | sed 's/.*"\(GPU-[^"]*\)"/\1/' | sort -u)
    visible=$(sed -n 's/^NVIDIA_VISIBLE_DEVICES=//p' "$tmp/gpu-task.out" | head -1)
    devs=$(grep -oE '(^|[ /])nvidia[0-9]+$' "$tmp/gpu-task.out" | tr -d ' /' | sort -u)
    n_devs=$(printf '%s\n' "$devs" | grep -c nvidia)
    minor=
    if [ -n "$given" ] && command -v nvidia-smi >/dev/null; then
      minor=$(nvidia-smi -q -i "$given" 2>/dev/null | awk -F: '/Minor Number/{gsub(/ /, "", $2); print $2; exit}')
    fi
    echo "---- one-GPU task $id: given $given; NVIDIA_VISIBLE_DEVICES=$visible; device nodes: $(echo $devs)"
    if [ "$run_rc" -ne 0 ]; then
      step gpu-task FAIL "task $id exited $run_rc: $(tail -3 "$tmp/gpu-task.out" | tr '\n' ' ')"
    elif [ "$(printf '%s\n' "$given" | grep -c '^GPU-')" -ne 1 ]; then
      step gpu-task FAIL "task $id was given \"$given\", want exactly one GPU"
    elif [ "$visible" != "$given" ]; then
      step gpu-task FAIL "NVIDIA_VISIBLE_DEVICES=$visible in the task, want $given"
    elif [ "$n_devs" -ne 1 ]; then
      step gpu-task FAIL "the task sees $n_devs GPU device nodes ($(echo $devs)), want exactly one"
    elif [ -n "$minor" ] && [ "$devs" != "nvidia$minor" ]; then
      step gpu-task FAIL "the task sees /dev/$devs, its GPU $given is /dev/nvidia$minor"
    else
      step gpu-task PASS "task $id sees exactly its GPU $given (/dev/$devs${minor:+, minor $minor by nvidia-smi})"
    fi
  fi
fi

# --- report ------------------------------------------------------------------
echo
echo "==== pcnode GPU check: $(hostname), $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - start)) s ===="
printf '%s\n' "${report[@]}"
if [ "$failed" = 1 ]; then
  echo "RESULT: FAIL (logs in $tmp with GPU_CHECK_KEEP=1)"
  exit 1
fi
if [ "$gpu" = 0 ]; then
  echo "RESULT: NO GPU — this machine has no NVIDIA GPU; the steps that need none passed (exit 2)"
  exit 2
fi
if [ "$no_cdi" = 1 ]; then
  echo "RESULT: INCOMPLETE — a GPU but no CDI spec for it; the one-GPU task did not run (exit 3)"
  exit 3
fi
echo "RESULT: PASS"
exit 0
