package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestStreamLimiter(t *testing.T) {
	l := newStreamLimiter(2, 3)
	var releases []func()
	take := func(client string) *streamLimitError {
		t.Helper()
		rel, err := l.acquire(client)
		if err == nil {
			releases = append(releases, rel)
		}
		return err
	}
	steps := []struct {
		client  string
		wantKey string // "" for admitted
	}{
		{"uid:1", ""},
		{"uid:1", ""},
		{"uid:1", "streams.max_per_client"},
		{"uid:2", ""},
		{"uid:2", "streams.max_total"},
		{"uid:3", "streams.max_total"},
	}
	for i, s := range steps {
		err := take(s.client)
		got := ""
		if err != nil {
			got = err.key
		}
		if got != s.wantKey {
			t.Fatalf("step %d: acquire(%q) refused by %q, want %q", i, s.client, got, s.wantKey)
		}
	}
	if total, one := l.open("uid:1"); total != 3 || one != 2 {
		t.Errorf("open(uid:1) = %d, %d, want 3, 2", total, one)
	}
	releases[0]()
	releases[0]() // a second release changes nothing
	if total, one := l.open("uid:1"); total != 2 || one != 1 {
		t.Errorf("after one release: open(uid:1) = %d, %d, want 2, 1", total, one)
	}
	if err := take("uid:3"); err != nil {
		t.Errorf("acquire(uid:3) after a release = %v, want a slot", err)
	}
	for _, r := range releases {
		r()
	}
	if total, _ := l.open(""); total != 0 || len(l.perClient) != 0 {
		t.Errorf("after every release: total %d, clients %v, want none", total, l.perClient)
	}
}

func TestStreamLimiterOnDrop(t *testing.T) {
	l := newStreamLimiter(1000, 1000)
	drops := 0
	l.onDrop = func() { drops++ }
	var rels []func()
	for range 40 {
		rel, _ := l.acquire("uid:1")
		rels = append(rels, rel)
	}
	for i, rel := range rels {
		rel()
		// Called after each reclaimDrop streams have ended.
		if want := (i + 1) / reclaimDrop; drops != want {
			t.Fatalf("after %d releases: %d drops, want %d", i+1, drops, want)
		}
	}
}

func TestStreamLimiterConcurrent(t *testing.T) {
	l := newStreamLimiter(5, 8)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		maxSeen int
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := []string{"uid:1", "uid:2", "uid:3"}[g%3]
			for range 500 {
				rel, err := l.acquire(client)
				if err != nil {
					continue
				}
				total, one := l.open(client)
				mu.Lock()
				maxSeen = max(maxSeen, total)
				mu.Unlock()
				if one > 5 {
					t.Errorf("client %s has %d streams, cap 5", client, one)
				}
				rel()
			}
		}()
	}
	wg.Wait()
	if maxSeen > 8 {
		t.Errorf("saw %d streams open, cap 8", maxSeen)
	}
	if total, _ := l.open(""); total != 0 {
		t.Errorf("%d streams left open, want 0", total)
	}
}

func TestStreamLimitErrorStatus(t *testing.T) {
	err := (&streamLimitError{key: "streams.max_per_client", limit: 7, client: "uid:1000"}).status()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "streams.max_per_client") || !strings.Contains(st.Message(), "7") {
		t.Errorf("status = %v %q, want RESOURCE_EXHAUSTED naming streams.max_per_client and 7", st.Code(), st.Message())
	}
	var qf *errdetails.QuotaFailure
	for _, d := range st.Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			qf = q
		}
	}
	if qf == nil || len(qf.GetViolations()) != 1 || qf.GetViolations()[0].GetSubject() != "streams.max_per_client" {
		t.Errorf("details = %v, want one QuotaFailure violation for streams.max_per_client", st.Details())
	}
}

// TestPeerCredentialsOnUnixSocket serves gRPC on a real unix socket with
// the daemon's transport credentials and stream caps, and checks that the
// caller's uid is the client key and that the cap refuses and frees slots.
func TestPeerCredentialsOnUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{streams: newStreamLimiter(2, 10)}
	keys := make(chan string, 10)
	srv := grpc.NewServer(grpc.Creds(peerCredentials{}), grpc.ChainStreamInterceptor(d.limitStreams,
		func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			keys <- clientKey(ss.Context())
			return h(srv, ss)
		}))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hc := healthpb.NewHealthClient(conn)
	watch := func() (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			cancel()
			return nil, err
		}
		return cancel, nil
	}
	c1, err := watch()
	if err != nil {
		t.Fatalf("first stream: %v", err)
	}
	if want := "uid:" + itoa(os.Getuid()); <-keys != want {
		t.Errorf("client key is not %q", want)
	}
	c2, err := watch()
	if err != nil {
		t.Fatalf("second stream: %v", err)
	}
	_, err = watch()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "streams.max_per_client") {
		t.Fatalf("third stream: %v, want RESOURCE_EXHAUSTED naming streams.max_per_client", err)
	}
	c1()
	// The slot is free once the server has seen the cancel.
	var c3 context.CancelFunc
	for range 200 {
		if c3, err = watch(); err == nil || status.Code(err) != codes.ResourceExhausted {
			break
		}
	}
	if err != nil {
		t.Fatalf("stream after closing one: %v, want a slot", err)
	}
	c2()
	c3()
}
