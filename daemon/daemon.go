package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/metrics"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/daemon/secrets"
	"github.com/pcnode/pcnode/gpu/cdi"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// Version is pcnoded's version, set at build time with -ldflags.
var Version = "dev"

// containerRuntime is what the daemon needs of containerd.
type containerRuntime interface {
	Version(ctx context.Context) (runtime.Version, error)
	Import(ctx context.Context, r io.Reader, opts runtime.ImportOptions) ([]runtime.Image, error)
	SweepImports(ctx context.Context) (int, error)
	Pull(ctx context.Context, ref string, auth *runtime.Auth, progress func(runtime.Progress)) (runtime.Image, error)
	ListImages(ctx context.Context) ([]runtime.Image, error)
	GetImage(ctx context.Context, ref string) (runtime.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	ReadImageFile(ctx context.Context, ref, file string, maxBytes int64) ([]byte, string, error)
	Start(ctx context.Context, spec runtime.ContainerSpec) (runtime.Started, error)
	Wait(ctx context.Context, id string) (runtime.ExitStatus, error)
	Kill(ctx context.Context, id string, signal syscall.Signal) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	Usage(ctx context.Context, id string) (runtime.Usage, error)
	Delete(ctx context.Context, id string) error
	Pids(ctx context.Context, id string) ([]int, error)
	ListContainers(ctx context.Context) ([]runtime.ContainerInfo, error)
	Close() error
}

var _ containerRuntime = (*runtime.Containerd)(nil)

// Daemon is one node's pcnoded: the local node behind the gRPC services
// (daemon/server calls it through the interfaces they declare; its
// operations are in local_*.go and submit.go), the scheduler and the
// runners. What it holds in memory is in components, each a type with its
// own lock in its own file: the task table, the processing-container
// cache, the channel table, the node's admission state, the node watch and
// conditions, the event broker, the containerd and GPU monitors.
type Daemon struct {
	cfg         config.Config
	log         *slog.Logger
	store       store.Store
	rt          containerRuntime
	sched       *sched.Scheduler
	paths       *hostpath.Policy
	staging     *hostpath.Staging // <state>/staging: bind mounts of opened host directories
	roles       roleTable         // [[api.roles]]
	tls         *tlsMaterial      // nil without api.tcp_address
	secrets     *secrets.Store    // nil without [secrets] dir
	startTime   time.Time
	exe         string // the log driver (pcnode-logd), started by the shim per task
	logsRoot    string // <state>/logs/<task id>/
	capacity    sched.Resources
	allocatable sched.Resources

	taskTable                   // queued tasks and runners (task_table.go)
	pcs       pcCache           // processing-container.json by image digest (pc_cache.go)
	chans     channelTable      // opened host directories of preparing and running tasks (channel_table.go)
	admin     nodeAdmin         // drain and recovery: does the node admit tasks (node_admin.go)
	gpus      *gpuNode          // GPU inventory, health monitor, CDI (gpus.go)
	events    *broker           // task events to watchers (broker.go)
	streams   *streamLimiter    // open streams per client and node (streamcap.go)
	node      *nodeWatch        // node changes to WatchNode streams (node_watch.go)
	ctrd      *containerdHealth // is containerd reachable (containerd_health.go)
	conds     *nodeConditions   // GetNode's conditions (node_conditions.go)
	metrics   *metrics.Metrics  // Prometheus families (metrics_source.go)
	logDone   chan string       // finished tasks whose log the metrics measure (logMetricsLoop)
	readyCh   chan struct{}     // readiness may have changed (readiness.go)

	writeMu sync.RWMutex // shared by update (writes run concurrently); tests hold it to hold writes back
	wake    chan struct{}
	wg      sync.WaitGroup
	cancel  context.CancelFunc

	logEnds logEnds // followers of logs not ended yet (log_ends.go)
}

// New opens the store, connects to containerd, builds the scheduler from the
// node's capacity and the GPU inventory. Start begins work.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckCrashPoint(); err != nil { // crashpoints builds only (crashpoint_on.go)
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own executable for the log driver: %w", err)
	}
	if exe, err = logs.ResolveDriverBinary(cfg.Logs.DriverPath, exe, os.Geteuid() == 0); err != nil {
		return nil, fmt.Errorf("logs.driver_path: %w", err)
	}
	if err := os.MkdirAll(cfg.Node.StateDir, 0o700); err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:       cfg,
		log:       log,
		events:    newBroker(),
		streams:   newStreamLimiter(cfg.Streams.MaxPerClient, cfg.Streams.MaxTotal),
		node:      newNodeWatch(),
		conds:     newNodeConditions(time.Now()),
		startTime: time.Now(),
		exe:       exe,
		logsRoot:  filepath.Join(cfg.Node.StateDir, "logs"),
		wake:      make(chan struct{}, 1),
		logDone:   make(chan string, logDoneBuffer),
		readyCh:   make(chan struct{}, 1),
		// recover.go adds runners to the map directly.
		taskTable: taskTable{runners: map[string]*runner{}, queued: map[string]*queuedTask{}},
	}
	d.streams.onDrop = new(memoryReclaimer).request
	d.metrics = newMetrics(d)
	if cfg.Secrets.Dir != "" {
		d.secrets = secrets.New(cfg.Secrets.Dir, cfg.Secrets.MaxSecretBytes.Bytes())
		// Not fatal: the operator may create it after the start; every
		// submit naming a secret checks it again and says why.
		if err := d.secrets.CheckDir(); err != nil {
			log.Warn("secret store unusable: tasks naming a secret are refused until it is fixed", "error", err)
		}
	}
	d.roles = newRoleTable(cfg.API.Roles)
	if cfg.API.TCPAddress != "" {
		if d.tls, err = newTLSMaterial(cfg.API, log); err != nil {
			return nil, err
		}
		if cfg.API.InsecureTCPWithoutClientAuth {
			log.Warn("WARNING: api.insecure_tcp_without_client_auth = true: TCP clients without a certificate are served as identity \"anonymous\"; development only, never on a reachable network",
				"tcp_address", cfg.API.TCPAddress)
		}
	}
	if err := os.MkdirAll(d.logsRoot, 0o700); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if d.paths, err = hostpath.New(cfg.Paths.DataRoots); err != nil {
		return nil, fmt.Errorf("paths.data_roots: %w", err)
	}
	// Containers are given paths below <state>/staging: no container may
	// reach them.
	if root, below := d.paths.Within(cfg.Node.StateDir); below {
		return nil, fmt.Errorf("node.state_dir %q lies in data root %q: containers could reach the daemon's state and staging mounts", cfg.Node.StateDir, root)
	}
	if d.staging, err = hostpath.NewStaging(filepath.Join(cfg.Node.StateDir, "staging")); err != nil {
		return nil, err
	}
	if d.store, err = store.Open(filepath.Join(cfg.Node.StateDir, "pcnode.db"), store.Options{History: cfg.Tasks.WatchHistory}); err != nil {
		return nil, err
	}
	// Live watchers are owed only the state changes written from now on.
	_, revs, rerr := d.store.Changes(ctx, 0, 1)
	if rerr != nil && !errors.Is(rerr, store.ErrCompacted) {
		return nil, rerr
	}
	d.events.startAt(revs.Current)
	if err := d.seedTaskMetrics(ctx); err != nil {
		return nil, err
	}
	rcfg := runtime.Config{
		Address:     cfg.Containerd.Address,
		Namespace:   cfg.Containerd.Namespace,
		Snapshotter: cfg.Containerd.Snapshotter,
		CDISpecDirs: cfg.GPU.CDISpecDirs,
		Registries:  map[string]runtime.Auth{},

		Allow32BitSyscalls: cfg.Tasks.Allow32BitSyscalls,
	}
	for _, r := range cfg.Registries {
		if r.Insecure {
			rcfg.InsecureRegistries = append(rcfg.InsecureRegistries, r.Host)
		}
		if r.Username != "" || r.Password != "" {
			rcfg.Registries[r.Host] = runtime.Auth{Username: r.Username, Password: r.Password}
		}
	}
	rt, err := runtime.New(ctx, rcfg, log.With("component", "runtime"))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", cfg.Containerd.Address, err)
	}
	d.rt = rt
	// containerd being down is no reason not to start: the API answers at
	// once, and Start recovers tasks once containerd is back.
	pctx, pcancel := context.WithTimeout(ctx, containerdPingTimeout)
	v, verr := rt.Version(pctx)
	pcancel()
	up := verr == nil
	if !up {
		log.Warn("containerd is not answering: starting anyway; tasks are recovered and admitted once it answers", "address", cfg.Containerd.Address, "err", verr)
	}
	d.ctrd = newContainerdHealth(rt, cfg.Containerd.Address, log.With("component", "containerd-health"), up, verr, d.startTime)
	d.ctrd.version = v
	d.conds.set(pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY, up, containerdMessage(verr), d.startTime)
	d.ctrd.onChange = d.containerdChanged
	if d.gpus, err = openGPUs(ctx, cfg.GPU, log); err != nil {
		return nil, err
	}
	d.gpus.onKnown = func() { d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_CONDITION) }
	if err := d.restoreNodeState(ctx); err != nil {
		return nil, err
	}
	if err := d.buildScheduler(ctx); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

func (d *Daemon) buildScheduler(ctx context.Context) error {
	cpu, mem, err := hostCapacity()
	if err != nil {
		return err
	}
	d.capacity = sched.Resources{MilliCPU: cpu, MemoryBytes: mem}
	d.allocatable = sched.Allocatable(d.capacity, sched.Resources{
		MilliCPU:    d.cfg.Resources.ReservedCPU.Millis(),
		MemoryBytes: d.cfg.Resources.ReservedMemory.Bytes(),
	})
	devs, err := d.gpus.inv.Devices(ctx)
	if err != nil {
		d.log.Warn("GPU inventory incomplete", "err", err)
	}
	s, err := sched.New(sched.Config{
		Allocatable:    d.allocatable,
		GPUs:           schedGPUs(devs, d.gpus.statuses()),
		BackfillWindow: d.cfg.Resources.BackfillWindow.Duration,
		MaxRunning:     d.cfg.Resources.MaxConcurrent,
	})
	if err != nil {
		return err
	}
	d.sched = s
	if len(d.gpus.uuids) > 0 {
		if av, err := cdi.Available(d.cfg.GPU.CDISpecDirs, d.gpus.uuids); err != nil {
			d.log.Warn("reading CDI specs", "dirs", d.cfg.GPU.CDISpecDirs, "err", err)
		} else {
			d.setCDIMissing(av.Missing)
		}
	}
	return nil
}

// handshakeTimeout bounds a connection's TLS handshake.
const handshakeTimeout = 10 * time.Second

// keepalivePolicy is what the daemon permits of its clients' pings. gRPC's
// default (a ping at most every 5 minutes, none without an open call)
// closes a scheduler's connection with GOAWAY "too_many_pings" a minute or
// two into an idle watch, since the Go client pings every 30 s
// (client.DefaultKeepaliveTime) to notice a vanished node. A ping every
// 10 s is allowed, also on a connection without a call, so that a
// scheduler's idle connection between submissions is kept too; a client
// pinging more often than that is still cut off, as gRPC does, after a few
// strikes.
var keepalivePolicy = keepalive.EnforcementPolicy{
	MinTime:             10 * time.Second,
	PermitWithoutStream: true,
}

// keepaliveParams is how the daemon watches its connections: a ping after
// a minute without traffic, and the connection closed when no answer comes
// within 20 s (a scheduler that vanished frees its streams and their
// per-client slots within about 80 s). Idle and old connections are never
// closed for their age: a scheduler keeps one connection per node.
var keepaliveParams = keepalive.ServerParameters{
	Time:    time.Minute,
	Timeout: 20 * time.Second,
}

// ServerOptions are the gRPC server options the daemon needs: peer
// credentials on the unix socket and TLS on TCP (serverCredentials), then
// keepalive that lets clients ping every 10 s (keepalivePolicy), then for
// every call authentication and the role check (auth.go), the stream caps
// keyed by the caller's identity, and error conversion.
func (d *Daemon) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(newServerCredentials(d.tls)),
		grpc.MaxRecvMsgSize(16 << 20),
		// A TCP peer that does not finish its TLS handshake is dropped
		// after this (gRPC's default is two minutes).
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalivePolicy),
		grpc.KeepaliveParams(keepaliveParams),
		grpc.ChainUnaryInterceptor(d.authUnary, d.unaryErrors),
		grpc.ChainStreamInterceptor(d.authStream, d.limitStreams, d.streamErrors),
	}
}

// Start recovers tasks left by an earlier run and starts the scheduling and
// retention loops. They end when ctx ends or Close is called. When
// containerd is not answering, Start returns at once, with the API
// serving: recovery (and the removal of unfinished imports) waits in the
// background until containerd answers, and nothing is scheduled before it
// is done.
func (d *Daemon) Start(ctx context.Context) error {
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.admin.setRecovering(true)
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.ctrd.run(ctx) }()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.logMetricsLoop(ctx) }()
	if d.tls != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.tlsReloadLoop(ctx) }()
	}
	if d.ctrd.containerdUp() {
		err := d.recoverOnce(ctx)
		if !errors.Is(err, runtime.ErrUnavailable) {
			if err != nil {
				return fmt.Errorf("recovering tasks: %w", err)
			}
			d.startLoops(ctx)
			return nil
		}
		d.ctrd.down(err) // gone meanwhile: as if it had been down at the start
	}
	d.log.Warn("containerd is down: serving the API; recovering tasks once it answers", "address", d.cfg.Containerd.Address)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.recoverWhenReachable(ctx); err != nil {
			if ctx.Err() == nil {
				d.log.Error("recovering tasks failed: no task is scheduled until pcnoded is restarted", "err", err)
			}
			return
		}
		d.startLoops(ctx)
	}()
	return nil
}

// recoverOnce removes unfinished image imports and recovers tasks
// (d.recover). An error wrapping runtime.ErrUnavailable means containerd
// went away before recover changed anything (it meets containerd first in
// ListContainers), so that both may be done again.
func (d *Daemon) recoverOnce(ctx context.Context) error {
	if _, err := d.rt.SweepImports(ctx); err != nil {
		if errors.Is(err, runtime.ErrUnavailable) {
			return err
		}
		d.log.Warn("removing unfinished image imports", "err", err)
	}
	return d.recover(ctx)
}

// recoverWhenReachable waits for containerd and runs recoverOnce, again
// each time containerd went away meanwhile. It returns recover's other
// errors, or ctx's.
func (d *Daemon) recoverWhenReachable(ctx context.Context) error {
	for {
		if err := d.ctrd.waitContainerd(ctx); err != nil {
			return err
		}
		err := d.recoverOnce(ctx)
		if !errors.Is(err, runtime.ErrUnavailable) {
			return err
		}
		d.log.Warn("containerd went away during recovery; recovering again once it answers", "err", err)
		d.ctrd.down(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(containerdRetryMin):
		}
	}
}

// startLoops starts the scheduling, GPU health and retention loops.
func (d *Daemon) startLoops(ctx context.Context) {
	d.admin.setRecovering(false)
	d.readinessChanged()
	d.wg.Add(3)
	go func() { defer d.wg.Done(); d.scheduleLoop(ctx) }()
	go func() { defer d.wg.Done(); d.watchGPUHealth(ctx) }()
	go func() { defer d.wg.Done(); d.retentionLoop(ctx) }()
	d.kick()
}

// containerdChanged is the health monitor's onChange: the condition, a
// WatchNode message, and when containerd is back a pass of the schedule
// loop for the tasks queued meanwhile.
func (d *Daemon) containerdChanged(up bool) {
	_, lastErr, since, _ := d.ctrd.state()
	d.conds.set(pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY, up, containerdMessage(lastErr), since)
	d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_CONDITION)
	d.readinessChanged()
	if up {
		d.kick()
	}
}

// Close stops the daemon's loops and runners without touching containers:
// running tasks keep running and are re-attached by the next start.
func (d *Daemon) Close() error {
	runners := d.taskTable.closeAll()
	if d.cancel != nil {
		d.cancel()
	}
	for _, r := range runners {
		r.detach()
	}
	d.wg.Wait()
	var errs []error
	if d.rt != nil {
		errs = append(errs, d.rt.Close())
	}
	if d.gpus != nil {
		errs = append(errs, d.gpus.inv.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.paths != nil {
		errs = append(errs, d.paths.Close())
	}
	return errors.Join(errs...)
}

// kick asks the schedule loop to run.
func (d *Daemon) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Daemon) taskLogDir(id string) string { return filepath.Join(d.logsRoot, id) }
