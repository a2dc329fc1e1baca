package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// BenchmarkIntegrationMTLSvsUnix measures GetNode and SubmitTask latency
// for 50 concurrent clients, each on its own connection, over TCP with
// mutual TLS and over the unix socket of the same pcnoded, and prints the
// 50th, 90th and 99th percentiles of each and the ratio mTLS/unix.
// Connections are made and used once before measuring, so the figures are
// per call, not per handshake. PCNODE_BENCH_CALLS sets the calls of each
// kind per client (default 20, made in two halves, in the order mTLS, unix,
// unix, mTLS). Submitted tasks stay queued behind one
// running task (resources.max_concurrent = 1), so that containers starting
// do not weigh on the figures; SubmitTask's time is mostly its bbolt write.
func BenchmarkIntegrationMTLSvsUnix(b *testing.B) {
	const clients = 50
	calls := 20
	if v, err := strconv.Atoi(os.Getenv("PCNODE_BENCH_CALLS")); err == nil && v > 0 {
		calls = v
	}
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: "warn", TCP: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 1
		c.Tasks.StartupTimeout = config.Duration{}
	}})
	img := d.ImportImage(b, testimage.Image{}).GetName()
	// One task holds the only slot; every task submitted below queues.
	blocker := d.Submit(b, e2eSpec(img, "sleep", "DURATION=1h"))
	d.WaitState(b, blocker.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)

	tlsConf := d.RoleTLS(b, "submitter")
	transports := []struct {
		name  string
		conns []*grpc.ClientConn
	}{
		{"mTLS", benchConns(b, clients, func() (*grpc.ClientConn, error) {
			return grpc.NewClient("passthrough:///"+d.TCPAddress, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
		})},
		{"unix", benchConns(b, clients, func() (*grpc.ClientConn, error) {
			return grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		})},
	}
	getNode := func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := pcnodev1.NewNodeServiceClient(c).GetNode(ctx, &pcnodev1.GetNodeRequest{})
		return err
	}
	submit := func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := pcnodev1.NewTaskServiceClient(c).SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: e2eSpec(img, "sleep", "DURATION=1s")})
		return err
	}
	type result struct{ p50, p90, p99 time.Duration }
	results := map[string]map[string]result{"mTLS": {}, "unix": {}}
	b.ResetTimer()
	for range b.N {
		for _, call := range []struct {
			name string
			fn   func(context.Context, *grpc.ClientConn) error
		}{{"GetNode", getNode}, {"SubmitTask", submit}} {
			// ABBA order: what grows while the benchmark runs (queued
			// tasks, a busy machine) weighs on both transports alike.
			ls := map[string][]time.Duration{}
			for _, i := range []int{0, 1, 1, 0} {
				tr := transports[i]
				ls[tr.name] = append(ls[tr.name], benchLatencies(b, tr.conns, calls/2+1, call.fn)...)
			}
			for name, l := range ls {
				results[name][call.name] = result{percentile(l, 50), percentile(l, 90), percentile(l, 99)}
			}
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%d concurrent clients, %d calls of each kind per client and transport, one pcnoded:\n", clients, 2*(calls/2+1))
	fmt.Printf("  %-10s %-5s %9s %9s %9s\n", "call", "via", "p50 ms", "p90 ms", "p99 ms")
	for _, call := range []string{"GetNode", "SubmitTask"} {
		m, u := results["mTLS"][call], results["unix"][call]
		fmt.Printf("  %-10s %-5s %9.2f %9.2f %9.2f\n", call, "mTLS", ms(m.p50), ms(m.p90), ms(m.p99))
		fmt.Printf("  %-10s %-5s %9.2f %9.2f %9.2f\n", call, "unix", ms(u.p50), ms(u.p90), ms(u.p99))
		fmt.Printf("  %-10s %-5s %9.2f %9.2f %9.2f\n", call, "ratio", ms(m.p50)/ms(u.p50), ms(m.p90)/ms(u.p90), ms(m.p99)/ms(u.p99))
		b.ReportMetric(float64(m.p50)/float64(u.p50), call+"-p50-ratio")
		b.ReportMetric(float64(m.p99)/float64(u.p99), call+"-p99-ratio")
	}
}

// benchConns opens n connections with dial and uses each once.
func benchConns(b *testing.B, n int, dial func() (*grpc.ClientConn, error)) []*grpc.ClientConn {
	b.Helper()
	conns := make([]*grpc.ClientConn, n)
	for i := range conns {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if _, err := pcnodev1.NewNodeServiceClient(c).GetNode(b.Context(), &pcnodev1.GetNodeRequest{}); err != nil {
			b.Fatalf("warm-up GetNode: %v", err)
		}
		conns[i] = c
	}
	return conns
}

// benchLatencies runs calls calls of fn on every connection at once and
// returns every call's latency.
func benchLatencies(b *testing.B, conns []*grpc.ClientConn, calls int, fn func(context.Context, *grpc.ClientConn) error) []time.Duration {
	b.Helper()
	var (
		mu   sync.Mutex
		all  []time.Duration
		wg   sync.WaitGroup
		errs = make(chan error, len(conns))
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, calls)
			for range calls {
				start := time.Now()
				if err := fn(b.Context(), c); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return all
}

// percentile is the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}
