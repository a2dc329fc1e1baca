package config

// DefaultTOML is the documented default configuration that
// `pcnoded config default` prints. A test proves it decodes to DefaultConfig.
const DefaultTOML = `# pcnoded configuration (/etc/pcnode/pcnoded.toml).
# Every key is shown with its default. Quantities are Kubernetes-style strings
# ("500m" CPU = half a core, "1Gi" = 1073741824 bytes); durations are Go
# durations ("10s", "5m", "168h"); "0s" means "none" where noted.

[node]
# Node name reported by GetNode. Empty: the host name.
name = ""
# Directory for the task database (pcnode.db), per-task logs and the
# staging mounts of starting tasks (staging/). Must not lie in a data root.
state_dir = "/var/lib/pcnode"

# Labels reported by GetNode, e.g. site = "lab-a".
[node.labels]

[api]
# Unix socket serving the v1 gRPC API, mode 0660.
socket = "/run/pcnode/pcnoded.sock"
# Group that owns the socket (name or numeric id). Empty: root's group.
# Connecting needs write access to the socket; what a caller may then do is
# decided by its identity's role (api.roles below).
socket_group = ""
# host:port of a TCP listener serving the same API, e.g. "0.0.0.0:7443".
# Empty: no TCP listener. TCP is only ever served over TLS (1.3 at least),
# and by default only to clients whose certificate the client CA signed and
# that is valid now: a client without one, with one of another CA, expired
# or not yet valid is refused at the handshake.
tcp_address = ""
# PEM files of the server certificate (chain) and its private key. Needed
# with tcp_address.
tls_cert_file = ""
tls_key_file = ""
# PEM bundle of the CAs whose client certificates are accepted. Needed with
# tcp_address, unless the development switch below is on (then a client
# certificate is still verified against it if one is given).
client_ca_file = ""
# DEVELOPMENT ONLY. true serves TCP (still over TLS) to clients without a
# certificate; each has the identity "anonymous", which gets the role
# api.roles binds to it, if any. A WARNING is logged at every start.
insecure_tcp_without_client_auth = false
# How often the three files above are read again: a changed certificate,
# key or CA bundle is used for new connections without a restart (SIGHUP
# reloads them at once). A file that does not load (or a key that does not
# match its certificate) is logged as an error and the material in use is
# kept. From "100ms" to "1h".
tls_reload_interval = "5s"

# Roles of client identities. A caller's identity is, on the unix socket,
# its process's uid and gids (SO_PEERCRED, SO_PEERGROUPS): "uid:N", "gid:N";
# over TCP, its certificate's first URI SAN (a SPIFFE ID such as
# "spiffe://example.org/scheduler"), else its first DNS SAN ("dns:NAME"),
# else its subject CN ("cn:NAME"). A caller matching several entries gets
# the highest role. Roles:
#   viewer     every read and watch call: tasks, logs, outputs, ResolveTask,
#              GetNode, WatchNode, ListImages, GetProcessingContainer, health
#   submitter  viewer, plus SubmitTask/RunTask/SubmitTasks, CancelTask and
#              DeleteTask of the tasks it submitted, PullImage, ImportImage
#   admin      everything: other identities' tasks, DrainNode, ResumeNode,
#              ClearGpuHealth, RemoveImage
# An identity bound to no role may call nothing (PERMISSION_DENIED). Every
# task records its submitter (Task.submitted_by) and idempotency keys are
# per identity. A file that sets [[api.roles]] replaces this list: keep the
# uid:0 entry if root should stay admin.
[[api.roles]]
identity = "uid:0"
role = "admin"

[metrics]
# host:port of the Prometheus listener: plain HTTP serving GET /metrics only
# (docs/metrics.md lists every family). "" or "off": no listener. 9464 is
# the port OpenTelemetry's Prometheus exporter uses by convention; choose
# another if that one is taken on the node.
address = "127.0.0.1:9464"
# PEM files of a server certificate (chain) and its key: the listener then
# serves HTTPS (TLS 1.3). Required when the address is not a loopback
# address (127.0.0.0/8, ::1, localhost): pcnoded refuses to start
# otherwise. They are read again when they change (checked at most once a
# second, at a connection).
tls_cert_file = ""
tls_key_file = ""
# PEM bundle of CAs: when set (with TLS), a scraper must present a client
# certificate one of them signed.
client_ca_file = ""

[containerd]
# containerd's API socket.
address = "/run/containerd/containerd.sock"
# containerd namespace that holds pcnode's images and containers.
namespace = "pcnode"
# Snapshotter used to unpack images.
snapshotter = "overlayfs"

[paths]
# Host directories under which task input/output channels may lie, after
# symlinks are resolved at submit; after submit no symlink below a data root
# is followed. Empty: tasks may not bind any host path.
data_roots = []

[resources]
# CPU and memory kept back for the system; tasks get the rest.
reserved_cpu = "500m"
reserved_memory = "1Gi"
# Requests assumed for a task that asks for none.
default_cpu = "1"
default_memory = "1Gi"
# Most tasks running at once, whatever their requests. 0: no such cap.
max_concurrent = 0
# A smaller task may start before a blocked, older or higher-priority one only
# while that one has waited less than this.
backfill_window = "5m0s"

[tasks]
# Longest time from submission to container start (queue, image, outputs),
# unless a spec sets its own. "0s": no limit.
startup_timeout = "30m0s"
# Longest run time, unless a spec sets its own. "0s": no limit.
execution_timeout = "0s"
# Time between SIGTERM and SIGKILL on cancel or timeout, unless a spec sets its own.
stop_grace_period = "10s"
# Most processes in a task's container, unless a spec sets its own. 0: no limit.
pids_limit = 4096
# How long finished tasks and their logs are kept. "0s": forever.
retention = "168h0m0s"
# State changes kept so that a WatchTasks can resume after a revision
# (100 to 10000000). A watcher further behind than this is told
# OUT_OF_RANGE (REVISION_COMPACTED) and re-lists. Each change kept holds the
# task as written, about 1 KiB on disk for a typical task.
watch_history = 10000
# Whether a spec may ask for the host network.
allow_host_network = false
# Whether containers may make system calls through the kernel's 32-bit entry
# points (i386 and x32 on amd64, arm on arm64). Off, the seccomp filter admits
# only the node's native architecture: a 32-bit program is killed by SIGSYS at
# its first system call (its task fails with exit code 159), the kernel's
# compat paths, a frequent source of exploitable bugs, are out of reach, and
# runc loads the filter in about half the time at each container start.
allow_32bit_syscalls = false
# Files hashed in parallel when writing output manifests. 0: one per CPU.
manifest_workers = 0
# Most files listed in one task's output manifests, all its channels
# together (1 to 10000000), and most bytes their paths may add up to (4Ki to
# 1Gi; paths can be long, so the count alone does not bound a manifest).
# Beyond either the manifests are truncated and the task says so in its
# warnings and message; every file is still checked as below.
# After every task the manifest walk clears setuid/setgid bits and removes
# device nodes in its output channels, and reports each in the task's warnings.
max_output_files = 100000
max_output_path_bytes = "32Mi"
# Memory limit and CPU quota of a task whose template and spec name none, so
# that no task runs unbounded. A task whose request is larger gets its request
# as limit. Lowered to the node's memory and CPUs when they are smaller.
# "0": no default limit (such tasks run with none).
default_memory_limit = "4Gi"
default_cpu_limit = "2"
# User for tasks whose spec names none: numeric "UID:GID", neither 0, e.g.
# "65534:65534". Empty: the image's user (often root).
# Ownership: pcnoded gives each output channel directory (not what is in it)
# to this user before the task starts, so the task can write there; files
# the task writes are owned by UID:GID on the host, and every task of the node
# runs as the same UID, so one task can change or delete the outputs of
# another task that it can reach. Inputs must be readable by UID:GID. A spec's
# own user still wins; such a task writes into channel directories only if
# their permissions let it. User-namespace remapping is not offered: runc 1.1
# has no idmapped bind mounts, so a remapped container's files would belong to
# host uids of the remapped range and its root could not write root-owned
# channels (see deploy/README.md).
default_user = ""

[logs]
# Size of one task log file before it is rotated, and how many files are kept.
# Older entries are dropped once a task's log exceeds max_file_size × max_files
# on disk; each entry (a line, or 64 KiB of a longer one) takes 25 bytes on top
# of its data, so the defaults keep about the last 37 MB of output written in
# 64-byte lines. Raise them for tasks whose full output must be kept.
max_file_size = "10Mi"
max_files = 5
# The logging binary the containerd shim runs for each task to capture its
# output (pcnode-logd, installed beside pcnoded). Empty: pcnode-logd in the
# directory of the pcnoded executable. pcnoded checks it at start: an
# executable regular file, and when pcnoded runs as root owned by root and
# not writable by group or others, nor its directory (the shim runs it as
# containerd's user, root).
driver_path = ""

[limits]
# Caps on what a caller submits (SubmitTask, RunTask, SubmitTasks, ResolveTask,
# and so a Kaapana task.json sent by pcnode-cli) and on the templates of
# processing-container.json files. Going over one is INVALID_ARGUMENT naming
# the field and the key.
#
# Serialized (protobuf) size of one task spec as submitted, not counting its
# registry credentials (capped on their own, never stored). A stored task
# holds its spec and its resolved instance: with both caps at 16Ki they take
# at most 3.2 MiB for a page of 100 tasks (ListTasks' default), under gRPC's
# 4 MiB default message size (state, messages, at most 16 short warnings and
# output summaries come on top).
max_spec_bytes = "16Ki"
# Serialized size of a task's resolved instance (the template's env and
# command merged with the spec's).
max_instance_bytes = "16Ki"
# Most variables in one env list: a spec's, a template's (inline or from an
# image), and the env a task runs with once merged.
max_env_entries = 1024
# Most choices of one template variable.
max_env_choices = 256
# Most arguments of a spec's or a template's command.
max_command_args = 4096
# Most input channels, and most output channels, of a spec or a template.
max_channels = 64
# Longest target_regex or target_glob of a scale rule.
max_regex_bytes = "1Ki"
# Largest compiled target_regex, in instructions of Go's regexp/syntax
# program; it bounds compiling at submit and matching every file measured.
max_regex_insts = 2000
# Command and environment of a task together, counted as execve does (each
# string with its NUL, plus an 8-byte pointer). Linux refuses more than a
# quarter of the stack limit (2 MiB under the usual 8 MiB), and the image's
# own env and entrypoint come on top; at most "2Mi". Each single argument or
# NAME=VALUE is also held to the kernel's 128 KiB (MAX_ARG_STRLEN), which no
# key changes.
max_exec_bytes = "1Mi"
# Most labels of a task, and the bytes of their keys and values together.
max_labels = 64
max_label_bytes = "16Ki"
# Smallest memory request or limit a spec, template or resolved task may have
# (0 is "unset" and always accepted). runc's own init uses about 2.5 MiB of
# the container's cgroup before the task's program starts: with runc 1.1 a
# limit of 1-3 MiB failed to start at all and 4 MiB ran a static program, so
# 6 MiB (Docker's minimum too) leaves the program some room. At least "1Mi".
min_memory = "6Mi"
# Smallest and largest CPU limit ("10m" is the kernel's smallest CFS quota
# per 100 ms period). A CPU request the node cannot give is refused with
# RESOURCE_EXHAUSTED, whatever these say.
min_cpu = "10m"
max_cpu = "1024"
[streams]
# Streaming RPCs (RunTask, SubmitTasks, WatchTasks, StreamLogs, WatchNode,
# PullImage, ImportImage, and the health and reflection streams) open at once
# per client, and on the whole node. A stream over either cap is refused with
# RESOURCE_EXHAUSTED naming the cap; closing a stream frees its slot at once.
# A client is the caller's identity (see [api] roles): the uid of the
# process on the other end of the API socket, or a TLS client's certificate
# identity.
max_per_client = 128
max_total = 512
# Log data one stream holds in memory at a time (each entry counted with 128
# bytes of overhead): a StreamLogs response or RunTask's current batch of log
# events never holds more, however fast the task writes or however slowly the
# client reads. Between 64Ki + 128 and 2Mi. On top of what the daemon uses
# without streams, a log stream costs at most 3 × buffer_bytes + 72Ki (the
# batch, its encoded message, the file buffer), so max_total × that bounds
# what all streams together add: with the defaults, 512 × 456Ki ≈ 228Mi.
# (Measured: 200 followers of one chatty task, most of them not reading, added
# 62Mi against a bound of 89Mi; the memory went back within seconds of their
# end.)
buffer_bytes = "128Ki"

[gpu]
# Inventory backend: "auto" (NVML when a driver is present, else none),
# "nvml", "static" (the [[gpu.static]] entries below) or "none".
backend = "auto"
# Directories searched for CDI specs of the node's GPUs.
cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
# XIDs caused by applications; they do not mark a GPU unhealthy.
application_xids = [13, 31, 43, 45, 68, 109]
# How often an unhealthy GPU is probed again.
reprobe_interval = "5m0s"

[images]
# Caps on one ImportImage, checked while the archive streams in; the import
# stops as soon as one is passed, keeps nothing it wrote, and fails with
# RESOURCE_EXHAUSTED naming the key (a malformed archive is INVALID_ARGUMENT).
# None can be switched off.
# Bytes of the archive once decompressed (a gzip- or zstd-compressed tarball
# counts at its decompressed size; the tar stream itself otherwise).
max_import_bytes = "32Gi"
# Entries (files, directories, links) in the archive's tar stream. OCI layouts
# and docker-archives hold a few per image and layer.
max_import_entries = 100000
# Size of any one file in the archive: a layer, a config, a manifest.
max_blob_bytes = "16Gi"
# Size of any one JSON document read into memory: oci-layout, index.json,
# manifest.json, an image index, manifest or config.
max_json_bytes = "8Mi"
# Total size of the files in the archive's layers, and their number, as they
# would be unpacked (a 1 MB gzip-compressed layer can hold terabytes of
# zeros). Checked while the archive streams in, before anything is unpacked.
max_unpacked_bytes = "64Gi"
max_unpacked_entries = 2000000
# How many times its compressed size a compressed archive may decompress to,
# and the archive's compressed layers taken together, checked once more than
# 64Mi have come out. Image layers compress 2-5 times; a gzip bomb of zeros
# compresses 1000 times, and stops here at about 64Mi, far below the caps
# above.
max_compression_ratio = 100

[secrets]
# The node's secret store, for values a task must get but no one may read
# back: a project password, a client secret. A spec names a secret instead of
# giving a value (task.json env entry {"name": "PASSWORD", "secret":
# "project-password"}, EnvVar.secret in the API); the daemon reads the file
# when it creates the container, so a rotated file takes effect for every
# container created after the change. Task records, GetTask/ListTasks/
# WatchTasks, ResolveTask, the CLI and the daemon's logs carry the secret's
# name only, never its content.
#
# dir holds one regular file per secret, the file name being the secret's
# name ([A-Za-z0-9][A-Za-z0-9._-]{0,62}). The directory must be owned by root
# and writable by no one else (0700 also keeps the names private), every file
# owned by root with no group or other permission bits (0600 or 0400); each
# file is opened beneath the directory without following
# symlinks, and anything else (a symlink, a directory, a FIFO, a file of
# another owner or readable by others) is refused with an error naming it.
# The content is used as is, except that one trailing newline is dropped
# (echo secret > file); it may not contain a NUL byte.
# Submitting a spec that names a secret checks the name and that the file
# exists (FAILED_PRECONDITION naming spec.env[N].secret when it does not);
# a secret missing when the container is created fails the task, saying so.
# Empty: no store; a spec naming a secret is FAILED_PRECONDITION.
dir = ""
# Largest secret file read (at most 120Ki: NAME=content is one string of the
# container's environment, which the kernel caps at 128Ki).
max_secret_bytes = "64Ki"
# Who may name which secrets: each grant gives one identity (spelled as in
# [[api.roles]]: "uid:N", "gid:N", a certificate's URI, "dns:NAME",
# "cn:NAME") the secrets its patterns match (path.Match over secret names;
# "*" is every secret, "kaapana-*" a prefix). A caller no grant covers may
# name no secret, whatever its role: SubmitTask and ResolveTask answer
# PERMISSION_DENIED naming spec.env[N].secret. A file that sets
# [[secrets.grants]] replaces this list: keep the uid:0 entry if root should
# still name every secret. For an Airflow worker with a client certificate:
# [[secrets.grants]]
# identity = "spiffe://example.org/airflow"
# secrets = ["kaapana-client-secret", "project-*"]
[[secrets.grants]]
identity = "uid:0"
secrets = ["*"]

# Registries: one table per host. Credentials are used for pulls that bring
# none of their own; insecure = true allows plain HTTP to that host.
# [[registries]]
# host = "registry.example.org:5000"
# username = "pcnode"
# password = "secret"
# insecure = false

# Static GPUs (backend = "static"), for development nodes and tests.
# [[gpu.static]]
# index = 0
# uuid = "GPU-00000000-0000-0000-0000-000000000000"
# model = "Test GPU"
# memory = "16Gi"
# numa_node = 0
# Optional readings reported as the GPU's current ones (GetNode, metrics),
# for testing dashboards; unset: not reported.
# memory_used = "1Gi"
# utilization_percent = 40
# temperature_celsius = 55
# power_draw_watts = 120
`
