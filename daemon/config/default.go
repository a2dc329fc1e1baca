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
# Directory for the task database (pcnode.db) and per-task logs.
state_dir = "/var/lib/pcnode"

# Labels reported by GetNode, e.g. site = "lab-a".
[node.labels]

[api]
# Unix socket serving the v1 gRPC API, mode 0660.
socket = "/run/pcnode/pcnoded.sock"
# Group that owns the socket (name or numeric id). Empty: root's group.
socket_group = ""

[containerd]
# containerd's API socket.
address = "/run/containerd/containerd.sock"
# containerd namespace that holds pcnode's images and containers.
namespace = "pcnode"
# Snapshotter used to unpack images.
snapshotter = "overlayfs"

[paths]
# Host directories under which task input/output channels may lie, after
# symlinks are resolved. Empty: tasks may not bind any host path.
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
# Whether a spec may ask for the host network.
allow_host_network = false
# Files hashed in parallel when writing output manifests. 0: one per CPU.
manifest_workers = 0

[logs]
# Size of one task log file before it is rotated, and how many files are kept.
# Older entries are dropped once a task's log exceeds max_file_size × max_files
# on disk; each entry (a line, or 64 KiB of a longer one) takes 25 bytes on top
# of its data, so the defaults keep about the last 37 MB of output written in
# 64-byte lines. Raise them for tasks whose full output must be kept.
max_file_size = "10Mi"
max_files = 5

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
`
