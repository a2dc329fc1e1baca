package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
)

// fakeSource is a hand-written Source.
type fakeSource struct {
	mu      sync.Mutex
	queue   int
	waiting map[string]int
	up      bool
	outages uint64
	gpus    []GPU
}

func (f *fakeSource) QueueLength() int { f.mu.Lock(); defer f.mu.Unlock(); return f.queue }
func (f *fakeSource) QueueWaiting() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}
func (f *fakeSource) Containerd() (bool, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, f.outages
}
func (f *fakeSource) GPUs(context.Context) []GPU { f.mu.Lock(); defer f.mu.Unlock(); return f.gpus }

func ptr[T any](v T) *T { return &v }

// parse reads an exposition in the text format.
func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("TextToMetricFamilies: %v", err)
	}
	return fams
}

// scrape gathers m through its HTTP handler, as Prometheus would.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "/metrics", nil)
	rec := &recorder{header: http.Header{}}
	m.Handler().ServeHTTP(rec, req)
	if rec.code != 0 && rec.code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.code, rec.body.String())
	}
	return parse(t, strings.NewReader(rec.body.String()))
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(c int)           { r.code = c }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// value finds the sample of family name with labels (a subset match) and
// returns its value (a counter's, gauge's or histogram's count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := find(fams, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	return v
}

func find(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestTransitions(t *testing.T) {
	m := New(Options{Version: "1.2.3"})
	m.SetTasks(map[string]int{StateQueued: 2, StateRunning: 1})
	m.Created()
	steps := []Transition{
		{From: StateQueued, To: StatePreparing, InFrom: 300 * time.Millisecond, Ran: -1},
		{From: StatePreparing, To: StateRunning, InFrom: 2 * time.Second, Ran: -1},
		{From: StateRunning, To: StateSucceeded, Reason: "completed", Ran: 90 * time.Second, GPUs: 1, GPUPeakBytes: 3 << 30},
		{From: StateQueued, To: StateCancelled, Reason: "cancelled", Ran: -1},
		{From: StateRunning, To: StateRunning}, // no change: nothing
	}
	for _, s := range steps {
		m.Observe(s)
	}
	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pcnode_tasks", map[string]string{"state": "queued"}, 1}, // 2 + 1 created - 2 left
		{"pcnode_tasks", map[string]string{"state": "preparing"}, 0},
		{"pcnode_tasks", map[string]string{"state": "running"}, 1}, // 1 + 1 - 1
		{"pcnode_tasks_finished_total", map[string]string{"state": "succeeded", "reason": "completed"}, 1},
		{"pcnode_tasks_finished_total", map[string]string{"state": "cancelled", "reason": "cancelled"}, 1},
		{"pcnode_queue_wait_seconds", nil, 1},
		{"pcnode_container_start_seconds", nil, 1},
		{"pcnode_task_duration_seconds", map[string]string{"state": "succeeded"}, 1},
		{"pcnode_task_gpu_memory_peak_bytes", nil, 1},
		{"pcnode_build_info", map[string]string{"version": "1.2.3"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The cancelled-while-queued task never ran: no duration of its state.
	if _, ok := find(fams, "pcnode_task_duration_seconds", map[string]string{"state": "cancelled"}); ok {
		t.Errorf("pcnode_task_duration_seconds{state=cancelled} present for a task that never ran")
	}
	h := fams["pcnode_task_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() != 90 {
		t.Errorf("task duration sum = %v, want 90", h.GetSampleSum())
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing: the Go and process collectors are registered", name)
		}
	}
}

func TestRefusedAndLogs(t *testing.T) {
	m := New(Options{})
	m.Refused("InvalidArgument", RefusedInvalid)
	m.Refused("InvalidArgument", RefusedInvalid)
	m.Refused("Internal", "something a caller wrote") // unknown reason: other
	m.LogClosed(4096, 100, 7)
	m.LogClosed(10, 1, 0)
	fams := scrape(t, m)
	if got := value(t, fams, "pcnode_admission_refusals_total", map[string]string{"code": "InvalidArgument", "reason": "invalid"}); got != 2 {
		t.Errorf("refusals invalid = %v, want 2", got)
	}
	if got := value(t, fams, "pcnode_admission_refusals_total", map[string]string{"code": "Internal", "reason": "other"}); got != 1 {
		t.Errorf("refusals other = %v, want 1", got)
	}
	if got := value(t, fams, "pcnode_admission_refusals_total", map[string]string{"reason": "draining"}); got != 0 {
		t.Errorf("refusals draining = %v, want 0 (pre-created)", got)
	}
	for name, want := range map[string]float64{
		"pcnode_task_log_bytes_total": 4106, "pcnode_task_log_entries_total": 101,
		"pcnode_task_log_dropped_entries_total": 7, "pcnode_task_logs_closed_total": 2,
	} {
		if got := value(t, fams, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, f := range fams["pcnode_admission_refusals_total"].GetMetric() {
		for _, l := range f.GetLabel() {
			if l.GetName() == "reason" && strings.Contains(l.GetValue(), " ") {
				t.Errorf("a caller's text became a label value: %q", l.GetValue())
			}
		}
	}
}

func TestScrapeSource(t *testing.T) {
	src := &fakeSource{queue: 5, waiting: map[string]int{"gpu": 3, "cpu": 2}, up: false, outages: 2, gpus: []GPU{
		{Index: 0, UUID: "GPU-a", Model: "Fake", MemoryUsedBytes: ptr(int64(1 << 30)), MemoryTotalBytes: ptr(int64(16 << 30)),
			UtilizationPercent: ptr(42), TemperatureCelsius: ptr(61), PowerDrawMilliwatts: ptr(int64(123500)),
			Health: "healthy", Allocated: true, TaskMemoryBytes: ptr(int64(512 << 20))},
		{Index: 1, UUID: "GPU-b", Model: "Fake", Health: "unhealthy"}, // no readings
	}}
	fams := scrape(t, New(Options{Source: src}))
	gpuA := map[string]string{"gpu": "0", "UUID": "GPU-a", "modelName": "Fake"}
	gpuB := map[string]string{"gpu": "1", "UUID": "GPU-b", "modelName": "Fake"}
	with := func(l map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range l {
			out[a] = b
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pcnode_queue_length", nil, 5},
		{"pcnode_queue_waiting_tasks", map[string]string{"reason": "gpu"}, 3},
		{"pcnode_queue_waiting_tasks", map[string]string{"reason": "cpu"}, 2},
		{"pcnode_queue_waiting_tasks", map[string]string{"reason": "memory"}, 0}, // every reason, 0 when none
		{"pcnode_queue_waiting_tasks", map[string]string{"reason": "ready"}, 0},
		{"pcnode_containerd_up", nil, 0},
		{"pcnode_containerd_outages_total", nil, 2},
		{"pcnode_gpu_memory_used_bytes", gpuA, 1 << 30},
		{"pcnode_gpu_memory_total_bytes", gpuA, 16 << 30},
		{"pcnode_gpu_utilization_ratio", gpuA, 0.42},
		{"pcnode_gpu_temperature_celsius", gpuA, 61},
		{"pcnode_gpu_power_watts", gpuA, 123.5},
		{"pcnode_gpu_health", with(gpuA, "state", "healthy"), 1},
		{"pcnode_gpu_health", with(gpuA, "state", "unhealthy"), 0},
		{"pcnode_gpu_health", with(gpuB, "state", "unhealthy"), 1},
		{"pcnode_gpu_allocated", gpuA, 1},
		{"pcnode_gpu_allocated", gpuB, 0},
		{"pcnode_gpu_task_memory_used_bytes", gpuA, 512 << 20},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"pcnode_gpu_memory_used_bytes", "pcnode_gpu_temperature_celsius", "pcnode_gpu_task_memory_used_bytes"} {
		if _, ok := find(fams, name, gpuB); ok {
			t.Errorf("%s present for GPU-b, which reports no such reading", name)
		}
	}
}

// fakeStream is a grpc.ServerStream for the interceptor test.
type fakeStream struct{ grpc.ServerStream }

func TestGRPCInterceptors(t *testing.T) {
	m := New(Options{})
	m.InitGRPC(map[string]grpc.ServiceInfo{"pcnode.v1.TaskService": {Methods: []grpc.MethodInfo{
		{Name: "SubmitTask"}, {Name: "RunTask", IsServerStream: true}, {Name: "SubmitTasks", IsClientStream: true, IsServerStream: true},
	}}})
	un := m.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/pcnode.v1.TaskService/SubmitTask"}
	if _, err := un(context.Background(), nil, info, func(context.Context, any) (any, error) { return "ok", nil }); err != nil {
		t.Fatal(err)
	}
	want := status.Error(codes.InvalidArgument, "bad")
	if _, err := un(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, want }); !errors.Is(err, want) {
		t.Fatalf("interceptor changed the error: %v", err)
	}
	st := m.StreamServerInterceptor()
	sinfo := &grpc.StreamServerInfo{FullMethod: "/pcnode.v1.TaskService/RunTask", IsServerStream: true}
	if err := st(nil, fakeStream{}, sinfo, func(any, grpc.ServerStream) error { return status.Error(codes.Unavailable, "down") }); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream interceptor changed the error: %v", err)
	}
	fams := scrape(t, m)
	sub := map[string]string{"grpc_service": "pcnode.v1.TaskService", "grpc_method": "SubmitTask", "grpc_type": "unary"}
	run := map[string]string{"grpc_service": "pcnode.v1.TaskService", "grpc_method": "RunTask", "grpc_type": "server_stream"}
	bidi := map[string]string{"grpc_method": "SubmitTasks", "grpc_type": "bidi_stream", "grpc_code": "OK"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"grpc_server_started_total", sub, 2},
		{"grpc_server_handled_total", with2(sub, "grpc_code", "OK"), 1},
		{"grpc_server_handled_total", with2(sub, "grpc_code", "InvalidArgument"), 1},
		{"grpc_server_handling_seconds", sub, 2},
		{"grpc_server_started_total", run, 1},
		{"grpc_server_handled_total", with2(run, "grpc_code", "Unavailable"), 1},
		{"grpc_server_handled_total", bidi, 0}, // pre-created by InitGRPC
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func with2(l map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range l {
		out[a] = b
	}
	return out
}

func TestServerPlain(t *testing.T) {
	m := New(Options{Version: "v"})
	s, err := Listen(config.Metrics{Address: "127.0.0.1:0"}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Errorf("Serve = %v after Shutdown, want nil", err)
		}
	})
	base := "http://" + s.Addr().String()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	fams := parse(t, resp.Body)
	resp.Body.Close()
	if got := value(t, fams, "pcnode_build_info", nil); got != 1 {
		t.Errorf("pcnode_build_info = %v, want 1", got)
	}
	for _, path := range []string{"/", "/debug/pprof/", "/metrics/x", "/debug/pprof/goroutine"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404: only /metrics is served", path, resp.StatusCode)
		}
	}
	resp, err = http.Post(base+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for name, c := range map[string]struct {
		cfg  config.Metrics
		want string
	}{
		"address in use": {config.Metrics{Address: busy.Addr().String()}, "metrics.address"},
		"missing cert":   {config.Metrics{Address: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "no.pem"), TLSKeyFile: filepath.Join(dir, "no-key.pem")}, "metrics.tls_cert_file"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Listen(c.cfg, New(Options{}), nil)
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatalf("Listen(%+v) = nil error, want one naming %s", c.cfg, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Listen(%+v) = %v, want it to name %s", c.cfg, err, c.want)
			}
		})
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

func TestServerTLSAndReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "one")
	s, err := Listen(config.Metrics{Address: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile}, New(Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	url := "https://" + s.Addr().String() + "/metrics"
	get := func(pool *x509.CertPool) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		if value(t, parse(t, resp.Body), "pcnode_build_info", nil) != 1 {
			return errors.New("no build info")
		}
		return nil
	}
	if err := get(pool); err != nil {
		t.Fatalf("HTTPS scrape: %v", err)
	}
	if resp, err := http.Get("http://" + s.Addr().String() + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP scrape of a TLS listener succeeded")
		}
	}
	// Replace the certificate: new connections get the new one.
	newCert, newKey, newPool := writeCert(t, t.TempDir(), "two")
	for _, p := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := get(newPool)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape with the new CA after replacing the certificate: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
