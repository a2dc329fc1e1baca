package main

// End-to-end tests of issue 11's metrics and readiness: a real pcnoded
// with a real containerd (and fake GPUs), its /metrics endpoint scraped
// over HTTP(S) and parsed with Prometheus' text parser, its gRPC health
// service and its sd_notify messages.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/metrics"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testenv"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// mxFreeAddr is a 127.0.0.1 address whose port was free a moment ago.
func mxFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// mxScrape GETs url with c and parses the text exposition.
func mxScrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape of %s: %v", url, err)
	}
	return fams
}

// mxSample is one sample's value: a counter's or gauge's value, a
// histogram's count (sum in sum).
type mxSample struct {
	value, sum float64
}

// mxFind returns the samples of family name whose labels include labels.
func mxFind(fams map[string]*dto.MetricFamily, name string, labels map[string]string) []mxSample {
	var out []mxSample
next:
	for _, m := range fams[name].GetMetric() {
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
			out = append(out, mxSample{value: m.GetCounter().GetValue()})
		case m.Gauge != nil:
			out = append(out, mxSample{value: m.GetGauge().GetValue()})
		case m.Histogram != nil:
			out = append(out, mxSample{value: float64(m.GetHistogram().GetSampleCount()), sum: m.GetHistogram().GetSampleSum()})
		case m.Untyped != nil:
			out = append(out, mxSample{value: m.GetUntyped().GetValue()})
		}
	}
	return out
}

// mxOne returns the value of the one sample of name with labels, failing
// t when there is not exactly one.
func mxOne(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) mxSample {
	t.Helper()
	s := mxFind(fams, name, labels)
	if len(s) != 1 {
		t.Errorf("%s%v: %d samples, want 1", name, labels, len(s))
		return mxSample{}
	}
	return s[0]
}

// mxType fails t unless family name is present with type typ.
func mxType(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) {
	t.Helper()
	f := fams[name]
	switch {
	case f == nil:
		t.Errorf("family %s missing from the scrape", name)
	case f.GetType() != typ:
		t.Errorf("family %s is a %v, want %v", name, f.GetType(), typ)
	case f.GetHelp() == "":
		t.Errorf("family %s has no help text", name)
	}
}

func intp(v int) *int { return &v }

// TestIntegrationMetrics runs a GPU task and a plain task (whose log
// rotates) on pcnoded with two fake GPUs, has two submits refused, scrapes
// the real /metrics endpoint while the GPU task runs and after both ended,
// and checks every family the issue names with its values.
func TestIntegrationMetrics(t *testing.T) {
	fakes := daemontest.NewFakeGPUs(t, 2)
	addr := mxFreeAddr(t)
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		fakes.Configure(c)
		c.Metrics.Address = addr
		for i := range c.GPU.Static {
			used := config.MustQuantity(fmt.Sprintf("%dMi", 100*(i+1)))
			c.GPU.Static[i].MemoryUsed = &used
			c.GPU.Static[i].UtilizationPercent = intp(10 + i)
			c.GPU.Static[i].TemperatureCelsius = intp(40 + i)
			c.GPU.Static[i].PowerDrawWatts = intp(100 + i)
		}
		// The plain task's 64000 bytes (1000 entries) do not fit: older
		// entries are rotated away, which the drop counter shows.
		c.Logs.MaxFileSize = config.MustQuantity("16Ki")
		c.Logs.MaxFiles = 2
	}})
	img := e2eTestImage(t, d).GetName()
	url := "http://" + addr + "/metrics"
	hc := &http.Client{Timeout: 10 * time.Second}

	// Two refusals: an invalid spec, and one that never fits (5 GPUs).
	ctx := t.Context()
	if _, err := d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: &pcnodev1.TaskSpec{Name: "bad"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SubmitTask without an image = %v, want InvalidArgument", err)
	}
	if _, err := d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(img, "too-big", 5, "echo no")}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("SubmitTask of 5 GPUs on a 2-GPU node = %v, want ResourceExhausted", err)
	}

	gpuTask := d.Submit(t, gpuSpec(img, "metrics-gpu", 1, "echo gpu -- sleep 3s"))
	plain := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=write-stdout 64000"))
	running := d.WaitState(t, gpuTask.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	held := running.GetAllocation().GetGpus()
	if len(held) != 1 {
		t.Fatalf("GPU task allocation = %v, want one GPU", held)
	}
	during := mxScrape(t, hc, url)
	if v := mxOne(t, during, "pcnode_tasks", map[string]string{"state": "running"}).value; v < 1 {
		t.Errorf("pcnode_tasks{state=running} = %v while the GPU task runs, want >= 1", v)
	}
	for i, u := range fakes.UUIDs() {
		want := 0.0
		if u == held[0].GetUuid() {
			want = 1
		}
		if v := mxOne(t, during, "pcnode_gpu_allocated", map[string]string{"gpu": fmt.Sprint(i), "UUID": u}).value; v != want {
			t.Errorf("pcnode_gpu_allocated{gpu=%d} = %v while the GPU task holds %s, want %v", i, v, held[0].GetUuid(), want)
		}
	}

	for _, id := range []string{gpuTask.GetId(), plain.GetId()} {
		e2eWantEnd(t, d.WaitTask(t, id, 0), pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	}
	// The logs are measured once the runners have sealed them.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; {
		fams = mxScrape(t, hc, url)
		if len(mxFind(fams, "pcnode_task_logs_closed_total", nil)) == 1 && mxFind(fams, "pcnode_task_logs_closed_total", nil)[0].value >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcnode_task_logs_closed_total did not reach 2 within 20s: %v", mxFind(fams, "pcnode_task_logs_closed_total", nil))
		}
		time.Sleep(200 * time.Millisecond)
	}

	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	for name, typ := range map[string]dto.MetricType{
		"pcnode_build_info": gauge, "pcnode_tasks": gauge, "pcnode_tasks_finished_total": counter,
		"pcnode_queue_length": gauge, "pcnode_queue_wait_seconds": histogram, "pcnode_queue_waiting_tasks": gauge,
		"pcnode_admission_refusals_total": counter, "pcnode_task_duration_seconds": histogram,
		"pcnode_container_start_seconds": histogram, "pcnode_containerd_up": gauge,
		"pcnode_containerd_outages_total": counter, "pcnode_task_log_bytes_total": counter,
		"pcnode_task_log_entries_total": counter, "pcnode_task_log_dropped_entries_total": counter,
		"pcnode_task_logs_closed_total": counter,
		"pcnode_gpu_memory_used_bytes":  gauge, "pcnode_gpu_memory_total_bytes": gauge,
		"pcnode_gpu_utilization_ratio": gauge, "pcnode_gpu_temperature_celsius": gauge,
		"pcnode_gpu_power_watts": gauge, "pcnode_gpu_health": gauge, "pcnode_gpu_allocated": gauge,
		"pcnode_task_gpu_memory_peak_bytes": histogram,
		"grpc_server_started_total":         counter, "grpc_server_handled_total": counter,
		"grpc_server_handling_seconds": histogram,
		"go_goroutines":                gauge, "process_resident_memory_bytes": gauge,
	} {
		mxType(t, fams, name, typ)
	}

	type want struct {
		name   string
		labels map[string]string
		check  func(float64) bool
		what   string
	}
	eq := func(v float64) (func(float64) bool, string) {
		return func(x float64) bool { return x == v }, fmt.Sprintf("= %v", v)
	}
	atLeast := func(v float64) (func(float64) bool, string) {
		return func(x float64) bool { return x >= v }, fmt.Sprintf(">= %v", v)
	}
	w := func(name string, labels map[string]string, f func(float64) bool, what string) want {
		return want{name, labels, f, what}
	}
	var wants []want
	add := func(name string, labels map[string]string, c func(float64) (func(float64) bool, string), v float64) {
		f, what := c(v)
		wants = append(wants, w(name, labels, f, what))
	}
	add("pcnode_build_info", map[string]string{"version": "dev"}, eq, 1)
	for _, s := range []string{"queued", "preparing", "running"} {
		add("pcnode_tasks", map[string]string{"state": s}, eq, 0)
	}
	add("pcnode_tasks_finished_total", map[string]string{"state": "succeeded", "reason": "completed"}, eq, 2)
	add("pcnode_queue_length", nil, eq, 0)
	for _, r := range metrics.QueueWaitReasons {
		add("pcnode_queue_waiting_tasks", map[string]string{"reason": r}, eq, 0)
	}
	add("pcnode_queue_wait_seconds", nil, eq, 2)
	add("pcnode_container_start_seconds", nil, eq, 2)
	add("pcnode_task_duration_seconds", map[string]string{"state": "succeeded"}, eq, 2)
	add("pcnode_admission_refusals_total", map[string]string{"code": "InvalidArgument", "reason": "invalid"}, eq, 1)
	add("pcnode_admission_refusals_total", map[string]string{"code": "ResourceExhausted", "reason": "never_fits"}, eq, 1)
	add("pcnode_containerd_up", nil, eq, 1)
	add("pcnode_containerd_outages_total", nil, eq, 0)
	add("pcnode_task_log_entries_total", nil, atLeast, 1001) // 1000 pattern lines + "gpu"
	add("pcnode_task_log_dropped_entries_total", nil, atLeast, 1)
	add("pcnode_task_log_bytes_total", nil, atLeast, 1)
	add("pcnode_task_logs_closed_total", nil, eq, 2)
	add("pcnode_task_gpu_memory_peak_bytes", nil, eq, 1)
	for i, u := range fakes.UUIDs() {
		l := map[string]string{"gpu": fmt.Sprint(i), "UUID": u, "modelName": daemontest.FakeGPUModel}
		add("pcnode_gpu_memory_used_bytes", l, eq, float64((100*(i+1))<<20))
		add("pcnode_gpu_memory_total_bytes", l, eq, 16<<30)
		add("pcnode_gpu_utilization_ratio", l, eq, float64(10+i)/100)
		add("pcnode_gpu_temperature_celsius", l, eq, float64(40+i))
		add("pcnode_gpu_power_watts", l, eq, float64(100+i))
		add("pcnode_gpu_allocated", l, eq, 0)
		add("pcnode_gpu_health", map[string]string{"UUID": u, "state": "healthy"}, eq, 1)
		add("pcnode_gpu_health", map[string]string{"UUID": u, "state": "unhealthy"}, eq, 0)
	}
	submit := map[string]string{"grpc_service": "pcnode.v1.TaskService", "grpc_method": "SubmitTask", "grpc_type": "unary"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range submit {
			out[a] = b
		}
		return out
	}
	add("grpc_server_started_total", submit, eq, 4)
	add("grpc_server_handled_total", with("grpc_code", "OK"), eq, 2)
	add("grpc_server_handled_total", with("grpc_code", "InvalidArgument"), eq, 1)
	add("grpc_server_handled_total", with("grpc_code", "ResourceExhausted"), eq, 1)
	add("grpc_server_handling_seconds", submit, eq, 4)
	add("grpc_server_handled_total", map[string]string{"grpc_method": "GetTask", "grpc_code": "OK"}, atLeast, 1)
	for _, c := range wants {
		if got := mxOne(t, fams, c.name, c.labels); !c.check(got.value) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got.value, c.what)
		}
	}
	if s := mxOne(t, fams, "pcnode_task_duration_seconds", map[string]string{"state": "succeeded"}); s.sum < 3 {
		t.Errorf("pcnode_task_duration_seconds sum = %v, want >= 3 (the GPU task slept 3 s)", s.sum)
	}
	// No label carries a task id or name.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, bad := range []string{gpuTask.GetId(), plain.GetId(), "metrics-gpu"} {
					if strings.Contains(l.GetValue(), bad) {
						t.Errorf("%s has label %s=%q: a task's id or name as a label", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	// /metrics only: nothing else, pprof least of all.
	for _, p := range []string{"/", "/debug/pprof/", "/debug/pprof/heap"} {
		resp, err := hc.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %s, want 404", p, resp.Status)
		}
	}
}

// TestIntegrationMetricsAddressNeedsTLS: pcnoded refuses to start with a
// metrics address beyond loopback and no TLS, naming the option.
func TestIntegrationMetricsAddressNeedsTLS(t *testing.T) {
	bin := daemontest.BinaryFor(t, daemontest.Build{})
	dir := t.TempDir()
	sock, err := os.MkdirTemp("", "pcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	cfg := daemontest.Config(filepath.Join(dir, "state"), filepath.Join(sock, "api.sock"), testenv.ContainerdAddress(t), "mx-refused", nil)
	cfg.Metrics.Address = "0.0.0.0:" + strings.TrimPrefix(mxFreeAddr(t), "127.0.0.1:")
	b, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pcnoded.toml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--config", path).CombinedOutput()
	if err == nil {
		t.Fatalf("pcnoded with metrics.address %s and no TLS started (and exited 0):\n%s", cfg.Metrics.Address, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("pcnoded with metrics.address %s and no TLS did not exit within a minute:\n%s", cfg.Metrics.Address, out)
	}
	if !strings.Contains(string(out), "metrics.tls_cert_file") || !strings.Contains(string(out), "loopback") {
		t.Errorf("pcnoded's error does not name metrics.tls_cert_file and why:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(sock, "api.sock")); err == nil {
		t.Errorf("pcnoded created its API socket before refusing its configuration")
	}
}

// TestIntegrationMetricsTLS: a metrics address on every interface with TLS
// and a client CA is served over HTTPS to a scraper with a client
// certificate of that CA only.
func TestIntegrationMetricsTLS(t *testing.T) {
	ca := daemontest.NewCA(t, "metrics CA")
	srv := ca.Server(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "m.pem"), filepath.Join(dir, "m-key.pem"), filepath.Join(dir, "ca.pem")
	daemontest.WriteFile(t, certFile, srv.CertPEM)
	daemontest.WriteFile(t, keyFile, srv.KeyPEM)
	daemontest.WriteFile(t, caFile, ca.PEM)
	port := strings.TrimPrefix(mxFreeAddr(t), "127.0.0.1:")
	daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Metrics = config.Metrics{Address: "0.0.0.0:" + port, TLSCertFile: certFile, TLSKeyFile: keyFile, ClientCAFile: caFile}
	}})
	url := "https://127.0.0.1:" + port + "/metrics"
	scraper := ca.Client(t, daemontest.CertOptions{CN: "prometheus"})
	hc := func(cert *daemontest.Cert) *http.Client {
		tc := daemontest.ClientTLS(ca.Pool(), cert)
		tc.ServerName = "127.0.0.1"
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	fams := mxScrape(t, hc(scraper), url)
	if v := mxOne(t, fams, "pcnode_build_info", nil).value; v != 1 {
		t.Errorf("pcnode_build_info over HTTPS = %v, want 1", v)
	}
	if v := mxOne(t, fams, "pcnode_containerd_up", nil).value; v != 1 {
		t.Errorf("pcnode_containerd_up = %v, want 1", v)
	}
	if resp, err := hc(nil).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("HTTPS scrape without a client certificate = %s, want a refused handshake", resp.Status)
	}
	other := daemontest.NewCA(t, "other CA").Client(t, daemontest.CertOptions{CN: "intruder"})
	if resp, err := hc(other).Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("HTTPS scrape with another CA's certificate = %s, want a refused handshake", resp.Status)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + port + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP scrape of the TLS listener succeeded")
		}
	}
}

// rdNotify is a unixgram socket standing in for systemd's notify socket.
type rdNotify struct {
	path string
	conn *net.UnixConn
	got  chan string
}

func rdListen(t *testing.T) *rdNotify {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn-") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &rdNotify{path: filepath.Join(dir, "notify"), got: make(chan string, 64)}
	if n.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := n.conn.Read(buf)
			if err != nil {
				close(n.got)
				return
			}
			n.got <- string(buf[:k])
		}
	}()
	return n
}

// waitFor returns the first notification containing want (every line of
// it), failing t after timeout.
func (n *rdNotify) waitFor(t *testing.T, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case msg, ok := <-n.got:
			if !ok {
				t.Fatalf("notify socket closed; seen %q", seen)
			}
			seen = append(seen, msg)
			all := true
			for _, w := range want {
				all = all && strings.Contains(msg, w)
			}
			if all {
				return msg
			}
		case <-deadline:
			t.Fatalf("no notification with %q within %v; seen %q", want, timeout, seen)
		}
	}
}

// rdHealth is a health client and a Watch of "" on the daemon's socket.
type rdHealth struct {
	hc      healthpb.HealthClient
	changes chan healthpb.HealthCheckResponse_ServingStatus
}

func rdDial(t *testing.T, d *daemontest.Daemon) *rdHealth {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h := &rdHealth{hc: healthpb.NewHealthClient(conn), changes: make(chan healthpb.HealthCheckResponse_ServingStatus, 64)}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	w, err := h.hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			r, err := w.Recv()
			if err != nil {
				return
			}
			h.changes <- r.GetStatus()
		}
	}()
	return h
}

// check is the status of service now.
func (h *rdHealth) check(t *testing.T, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r, err := h.hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health Check(%q): %v", service, err)
	}
	return r.GetStatus()
}

// watchUntil waits for the Watch of "" to report want.
func (h *rdHealth) watchUntil(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case st := <-h.changes:
			if st == want {
				return
			}
		case <-deadline:
			t.Fatalf("health Watch did not report %v within %v", want, timeout)
		}
	}
}

var rdServices = []string{"", "pcnode.v1.TaskService", "pcnode.v1.NodeService", "pcnode.v1.ImageService"}

// TestIntegrationReadiness: the health service is SERVING while containerd
// answers, NOT_SERVING (Check and Watch, "" and every pcnode.v1 service)
// from when containerd stops until it is back, and also for a pcnoded
// started while containerd is down; pcnoded sends READY=1 on the
// NOTIFY_SOCKET the test provides once it serves the API, STATUS lines of
// what it waits for, and STOPPING=1 when it stops.
func TestIntegrationReadiness(t *testing.T) {
	c := daemontest.StartContainerd(t)
	n := rdListen(t)
	d := daemontest.Start(t, daemontest.Options{Containerd: c, Env: []string{"NOTIFY_SOCKET=" + n.path}})
	n.waitFor(t, 10*time.Second, "READY=1", "STATUS=serving")
	h := rdDial(t, d)
	for _, s := range rdServices {
		if st := h.check(t, s); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v with containerd up, want SERVING", s, st)
		}
	}
	h.watchUntil(t, healthpb.HealthCheckResponse_SERVING, 5*time.Second)

	c.Stop(t)
	h.watchUntil(t, healthpb.HealthCheckResponse_NOT_SERVING, 10*time.Second)
	for _, s := range rdServices {
		if st := h.check(t, s); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q = %v with containerd stopped, want NOT_SERVING", s, st)
		}
	}
	n.waitFor(t, 10*time.Second, "STATUS=waiting for containerd at "+c.Address)

	c.Start(t)
	h.watchUntil(t, healthpb.HealthCheckResponse_SERVING, 15*time.Second)
	n.waitFor(t, 10*time.Second, "STATUS=serving")

	// Started while containerd is down: READY=1 (the API is served), with
	// what it waits for; NOT_SERVING until containerd is back.
	c.Stop(t)
	h.watchUntil(t, healthpb.HealthCheckResponse_NOT_SERVING, 10*time.Second)
	d.Stop(t)
	n.waitFor(t, 10*time.Second, "STOPPING=1")
	d.Restart(t)
	n.waitFor(t, 20*time.Second, "READY=1", "STATUS=waiting for containerd")
	h = rdDial(t, d)
	for _, s := range rdServices {
		if st := h.check(t, s); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q = %v after a start with containerd down, want NOT_SERVING", s, st)
		}
	}
	c.Start(t)
	h.watchUntil(t, healthpb.HealthCheckResponse_SERVING, 20*time.Second)
	if st := h.check(t, "pcnode.v1.TaskService"); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health pcnode.v1.TaskService = %v once containerd is back, want SERVING", st)
	}
}
