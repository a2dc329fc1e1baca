package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Task states as the metrics label them: the API's TaskState names without
// the TASK_STATE_ prefix, lower case.
const (
	StateQueued    = "queued"
	StatePreparing = "preparing"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// unfinishedStates are the values of pcnode_tasks' state label.
var unfinishedStates = []string{StateQueued, StatePreparing, StateRunning}

// Refusal reasons of pcnode_admission_refusals_total, with the gRPC code
// each is answered with. The daemon maps every refused submit to one.
const (
	RefusedInvalid           = "invalid"                // InvalidArgument: the spec is wrong
	RefusedNeverFits         = "never_fits"             // ResourceExhausted: more than the node has
	RefusedDraining          = "draining"               // FailedPrecondition: DrainNode
	RefusedPrecondition      = "precondition"           // FailedPrecondition: CDI specs, secrets
	RefusedContainerdDown    = "containerd_unavailable" // Unavailable: containerd does not answer
	RefusedRecovering        = "recovering"             // Unavailable: the last run's tasks are being recovered
	RefusedPermission        = "permission_denied"      // PermissionDenied: role or secret grant
	RefusedConflict          = "conflict"               // AlreadyExists: idempotency key of another spec
	RefusedOther             = "other"                  // anything else (Internal, Canceled, ...)
	maxRefusalCodeLabelBytes = 32
)

// refusalCodes pre-creates every reason with its usual code at 0, so that
// rate() works from the first refusal.
var refusalCodes = map[string]string{
	RefusedInvalid:        "InvalidArgument",
	RefusedNeverFits:      "ResourceExhausted",
	RefusedDraining:       "FailedPrecondition",
	RefusedPrecondition:   "FailedPrecondition",
	RefusedContainerdDown: "Unavailable",
	RefusedRecovering:     "Unavailable",
	RefusedPermission:     "PermissionDenied",
	RefusedConflict:       "AlreadyExists",
}

// GPU is one GPU as a scrape sees it. A nil reading is one the inventory
// does not report (the static backend declares no readings unless
// configured, NVML may fail to read one): its sample is left out.
type GPU struct {
	Index int
	UUID  string
	Model string

	MemoryUsedBytes     *int64
	MemoryTotalBytes    *int64
	UtilizationPercent  *int
	TemperatureCelsius  *int
	PowerDrawMilliwatts *int64
	// Health is "healthy", "unhealthy" or "unknown".
	Health string
	// Allocated reports whether a task holds the GPU.
	Allocated bool
	// TaskMemoryBytes is the GPU memory the holding task's processes use on
	// it, sampled now; nil when no task holds it or the backend cannot
	// sample process memory.
	TaskMemoryBytes *int64
}

// QueueWaitReasons are the values of pcnode_queue_waiting_tasks's reason
// label, the scheduler's reasons (daemon/sched's WaitReasons; a daemon test
// checks that the two agree): concurrency (the node runs max_concurrent
// tasks), behind (an earlier task past its backfill window holds the queue),
// cpu, memory, gpu (not enough of it free), ready (fits; starts at the next
// scheduling pass).
var QueueWaitReasons = []string{"concurrency", "behind", "cpu", "memory", "gpu", "ready"}

// GPUHealthStates are the values of pcnode_gpu_health's state label.
var GPUHealthStates = []string{"healthy", "unhealthy", "unknown"}

// Source is what a scrape reads from the daemon. Its methods must be safe
// for concurrent use and return quickly; ctx bounds GPUs.
type Source interface {
	// QueueLength is the number of tasks waiting for admission.
	QueueLength() int
	// QueueWaiting counts the queued tasks by why they wait, by the reasons
	// in QueueWaitReasons.
	QueueWaiting() map[string]int
	// Containerd reports whether containerd answers now and how many
	// outages were seen since the daemon started.
	Containerd() (up bool, outages uint64)
	// GPUs is the node's GPUs in index order.
	GPUs(ctx context.Context) []GPU
}

// Options configure New.
type Options struct {
	// Version is the daemon's version (daemon.Version).
	Version string
	// Source is read at every scrape; nil: the scrape-time families
	// (queue length, containerd, GPUs) are not exported.
	Source Source
	// ScrapeTimeout bounds Source.GPUs in one scrape; 0: 5 s.
	ScrapeTimeout time.Duration
}

// Metrics holds the daemon's metric families and their registry.
type Metrics struct {
	reg  *prometheus.Registry
	opts Options

	tasks        *prometheus.GaugeVec
	finished     *prometheus.CounterVec
	queueWait    prometheus.Histogram
	startLatency prometheus.Histogram
	duration     *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	gpuPeak      prometheus.Histogram
	logBytes     prometheus.Counter
	logEntries   prometheus.Counter
	logDropped   prometheus.Counter
	logTasks     prometheus.Counter

	grpcStarted  *prometheus.CounterVec
	grpcHandled  *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec
}

// New builds the families and registers them, with build info and the
// process and Go runtime collectors, on a registry of their own.
func New(opts Options) *Metrics {
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 5 * time.Second
	}
	m := &Metrics{reg: prometheus.NewRegistry(), opts: opts}
	m.tasks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pcnode_tasks",
		Help: "Unfinished tasks on the node by state (queued, preparing, running); finished ones are counted by pcnode_tasks_finished_total.",
	}, []string{"state"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pcnode_tasks_finished_total",
		Help: "Tasks that reached a final state since the daemon started, by state and reason.",
	}, []string{"state", "reason"})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pcnode_queue_wait_seconds",
		Help:    "Time a task spent QUEUED before the scheduler admitted it (QUEUED to PREPARING); a requeued task's wait counts from its requeue.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	})
	m.startLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pcnode_container_start_seconds",
		Help:    "Time from admission to a started container (PREPARING to RUNNING): image resolution or pull, output preparation, container create and start.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pcnode_task_duration_seconds",
		Help:    "Run time of tasks whose container started: start to finish (the container's exit), by final state.",
		Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400},
	}, []string{"state"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pcnode_admission_refusals_total",
		Help: "Submits the node refused, by gRPC code and reason (invalid, never_fits, draining, precondition, containerd_unavailable, recovering, permission_denied, conflict, other).",
	}, []string{"code", "reason"})
	m.gpuPeak = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pcnode_task_gpu_memory_peak_bytes",
		Help:    "Peak GPU memory of a finished GPU task's processes, all its GPUs together (0 where the backend cannot sample process memory).",
		Buckets: append([]float64{0}, prometheus.ExponentialBuckets(64<<20, 2, 12)...),
	})
	m.logBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pcnode_task_log_bytes_total",
		Help: "Bytes of task logs kept on disk when each task's log was closed (after rotation), summed over finished tasks.",
	})
	m.logEntries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pcnode_task_log_entries_total",
		Help: "Log entries (lines) written by finished tasks, stdout and stderr together.",
	})
	m.logDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pcnode_task_log_dropped_entries_total",
		Help: "Log entries of finished tasks rotated away (logs.max_file_size × logs.max_files exceeded) and no longer readable.",
	})
	m.logTasks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pcnode_task_logs_closed_total",
		Help: "Finished tasks whose log was measured for the pcnode_task_log_* counters.",
	})
	grpcLabels := []string{"grpc_service", "grpc_method", "grpc_type"}
	m.grpcStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_started_total",
		Help: "RPCs started on the server.",
	}, grpcLabels)
	m.grpcHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "grpc_server_handled_total",
		Help: "RPCs completed on the server, by gRPC code.",
	}, append(grpcLabels, "grpc_code"))
	m.grpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grpc_server_handling_seconds",
		Help:    "Time from the start of an RPC to its end on the server (a stream's whole life).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	}, grpcLabels)

	for _, s := range unfinishedStates {
		m.tasks.WithLabelValues(s)
	}
	for reason, code := range refusalCodes {
		m.refusals.WithLabelValues(code, reason)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pcnode_build_info",
		Help:        "Always 1; the labels say which pcnoded runs: version, VCS revision (\"unknown\" when not built from a checkout) and Go version.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "revision": revision(), "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.tasks, m.finished, m.queueWait, m.startLatency, m.duration, m.refusals, m.gpuPeak,
		m.logBytes, m.logEntries, m.logDropped, m.logTasks, m.grpcStarted, m.grpcHandled, m.grpcDuration, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Source != nil {
		m.reg.MustRegister(newScrapeCollector(opts.Source, opts.ScrapeTimeout))
	}
	return m
}

// revision is the VCS revision the binary was built from, if recorded.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Registry is the registry holding every family (for tests and Handler).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or negotiated)
// format. At most maxInFlight scrapes run at once; more are answered 503.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: maxInFlight,
		Timeout:             m.opts.ScrapeTimeout + 5*time.Second,
		ErrorHandling:       promhttp.ContinueOnError,
	})
}

// maxInFlight bounds concurrent scrapes.
const maxInFlight = 4

// SetTasks sets pcnode_tasks to counts (state → number of tasks), as the
// store holds them at the start; states not in counts become 0.
func (m *Metrics) SetTasks(counts map[string]int) {
	for _, s := range unfinishedStates {
		m.tasks.WithLabelValues(s).Set(float64(counts[s]))
	}
}

// Created counts a new task, stored QUEUED.
func (m *Metrics) Created() { m.tasks.WithLabelValues(StateQueued).Inc() }

// Transition is one state change of a task as written to the store.
type Transition struct {
	// From and To are the states before and after (State* constants).
	From, To string
	// Reason is the final reason (lower case, without TASK_REASON_), for
	// a final To.
	Reason string
	// InFrom is how long the task was in From (since its last state
	// change); 0: not known.
	InFrom time.Duration
	// Ran is start to finish of a final task whose container started;
	// negative: it never started.
	Ran time.Duration
	// GPUs is the number of GPUs the task held, GPUPeakBytes the peak GPU
	// memory of its processes (for a final To).
	GPUs         int
	GPUPeakBytes int64
}

func isUnfinished(s string) bool { return s == StateQueued || s == StatePreparing || s == StateRunning }

// Observe records a state change: the task gauges, the finished counter,
// and the durations it ends (queue wait, container start, run time).
func (m *Metrics) Observe(t Transition) {
	if t.From == t.To {
		return
	}
	if isUnfinished(t.From) {
		m.tasks.WithLabelValues(t.From).Dec()
	}
	if isUnfinished(t.To) {
		m.tasks.WithLabelValues(t.To).Inc()
	}
	switch {
	case t.From == StateQueued && t.To == StatePreparing && t.InFrom > 0:
		m.queueWait.Observe(t.InFrom.Seconds())
	case t.From == StatePreparing && t.To == StateRunning && t.InFrom > 0:
		m.startLatency.Observe(t.InFrom.Seconds())
	}
	if !isUnfinished(t.To) && t.To != "" {
		reason := t.Reason
		if reason == "" {
			reason = "unspecified"
		}
		m.finished.WithLabelValues(t.To, reason).Inc()
		if t.Ran >= 0 {
			m.duration.WithLabelValues(t.To).Observe(t.Ran.Seconds())
		}
		if t.GPUs > 0 {
			m.gpuPeak.Observe(float64(max(t.GPUPeakBytes, 0)))
		}
	}
}

// Refused counts a refused submit. code is the gRPC code's name; reason
// one of the Refused* constants.
func (m *Metrics) Refused(code, reason string) {
	if _, known := refusalCodes[reason]; !known {
		reason = RefusedOther
	}
	if len(code) > maxRefusalCodeLabelBytes {
		code = code[:maxRefusalCodeLabelBytes]
	}
	m.refusals.WithLabelValues(code, reason).Inc()
}

// LogClosed adds one finished task's log: the bytes its segments hold on
// disk, the entries written, and the entries rotated away.
func (m *Metrics) LogClosed(bytes int64, entries, dropped uint64) {
	m.logBytes.Add(float64(max(bytes, 0)))
	m.logEntries.Add(float64(entries))
	m.logDropped.Add(float64(dropped))
	m.logTasks.Inc()
}

// scrapeCollector exports what is read from the daemon at scrape time:
// queue length, containerd's state, the GPUs.
type scrapeCollector struct {
	src     Source
	timeout time.Duration

	queue, queueWaiting, ctrdUp, ctrdOutages      *prometheus.Desc
	gpuMemUsed, gpuMemTotal, gpuUtil, gpuTemp     *prometheus.Desc
	gpuPower, gpuHealth, gpuAllocated, gpuTaskMem *prometheus.Desc
}

// gpuLabels are dcgm-exporter's names for the same labels.
var gpuLabels = []string{"gpu", "UUID", "modelName"}

func newScrapeCollector(src Source, timeout time.Duration) *scrapeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	g := func(name, help string, extra ...string) *prometheus.Desc {
		return d(name, help, append(append([]string(nil), gpuLabels...), extra...)...)
	}
	return &scrapeCollector{
		src: src, timeout: timeout,
		queue:        d("pcnode_queue_length", "Tasks waiting for admission (the scheduler's queue)."),
		queueWaiting: d("pcnode_queue_waiting_tasks", "Queued tasks by why they wait, the first that applies in the scheduler's order: concurrency (max_concurrent tasks run), behind (an earlier task past its backfill window holds the queue), cpu, memory, gpu (not enough free), ready (starts at the next scheduling pass).", "reason"),
		ctrdUp:       d("pcnode_containerd_up", "1 while containerd answers, 0 while it is unreachable (the CONTAINERD_READY condition)."),
		ctrdOutages:  d("pcnode_containerd_outages_total", "Times containerd became unreachable since the daemon started (a start while it was down counts once)."),
		gpuMemUsed:   g("pcnode_gpu_memory_used_bytes", "GPU memory in use (dcgm-exporter: DCGM_FI_DEV_FB_USED, in MiB there)."),
		gpuMemTotal:  g("pcnode_gpu_memory_total_bytes", "GPU memory in total (dcgm-exporter: DCGM_FI_DEV_FB_FREE + DCGM_FI_DEV_FB_USED)."),
		gpuUtil:      g("pcnode_gpu_utilization_ratio", "GPU utilisation over the driver's last sample period, 0 to 1 (dcgm-exporter: DCGM_FI_DEV_GPU_UTIL / 100)."),
		gpuTemp:      g("pcnode_gpu_temperature_celsius", "GPU core temperature (dcgm-exporter: DCGM_FI_DEV_GPU_TEMP)."),
		gpuPower:     g("pcnode_gpu_power_watts", "GPU power draw (dcgm-exporter: DCGM_FI_DEV_POWER_USAGE)."),
		gpuHealth:    g("pcnode_gpu_health", "1 for the GPU's current health (state healthy, unhealthy or unknown), 0 for the others (dcgm-exporter: no direct equivalent; DCGM_FI_DEV_XID_ERRORS is the usual cause).", "state"),
		gpuAllocated: g("pcnode_gpu_allocated", "1 while a task holds the GPU, else 0."),
		gpuTaskMem:   g("pcnode_gpu_task_memory_used_bytes", "GPU memory used on the GPU by the processes of the task holding it, sampled at the scrape (NVML process info; absent where the backend cannot sample process memory or no task holds the GPU)."),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queue, c.queueWaiting, c.ctrdUp, c.ctrdOutages, c.gpuMemUsed, c.gpuMemTotal, c.gpuUtil,
		c.gpuTemp, c.gpuPower, c.gpuHealth, c.gpuAllocated, c.gpuTaskMem} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.queue, float64(c.src.QueueLength()))
	waiting := c.src.QueueWaiting()
	for _, r := range QueueWaitReasons {
		gauge(c.queueWaiting, float64(waiting[r]), r)
	}
	up, outages := c.src.Containerd()
	gauge(c.ctrdUp, boolFloat(up))
	ch <- prometheus.MustNewConstMetric(c.ctrdOutages, prometheus.CounterValue, float64(outages))
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, g := range c.src.GPUs(ctx) {
		l := []string{strconv.Itoa(g.Index), g.UUID, g.Model}
		if g.MemoryUsedBytes != nil {
			gauge(c.gpuMemUsed, float64(*g.MemoryUsedBytes), l...)
		}
		if g.MemoryTotalBytes != nil {
			gauge(c.gpuMemTotal, float64(*g.MemoryTotalBytes), l...)
		}
		if g.UtilizationPercent != nil {
			gauge(c.gpuUtil, float64(*g.UtilizationPercent)/100, l...)
		}
		if g.TemperatureCelsius != nil {
			gauge(c.gpuTemp, float64(*g.TemperatureCelsius), l...)
		}
		if g.PowerDrawMilliwatts != nil {
			gauge(c.gpuPower, float64(*g.PowerDrawMilliwatts)/1000, l...)
		}
		for _, s := range GPUHealthStates {
			gauge(c.gpuHealth, boolFloat(g.Health == s), append(l, s)...)
		}
		gauge(c.gpuAllocated, boolFloat(g.Allocated), l...)
		if g.TaskMemoryBytes != nil {
			gauge(c.gpuTaskMem, float64(*g.TaskMemoryBytes), l...)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
