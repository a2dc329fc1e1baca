package client_test

// Integration test of the client against a real pcnoded (internal/daemontest)
// and the private containerd of `make test`: a run followed with RunEvents
// while its log is followed through a proxy socket the test cuts.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// cutProxy forwards a unix socket or a loopback TCP port to upstream byte
// for byte (TLS passes through it end to end); cut closes every connection
// open through it (both sides), as a network partition or a restarting
// proxy would, while new connections keep being accepted.
type cutProxy struct {
	addr string // socket path or host:port to dial instead of upstream

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	cuts     int // calls of cut
	// severed counts the cuts that closed a connection: a cut can find
	// none open when the client has not reconnected since the last one
	// (events it had already received are still delivered).
	severed int
}

// newCutProxy listens on a fresh unix socket (network "unix") or loopback
// port (network "tcp") and forwards to upstream on the same network.
func newCutProxy(t *testing.T, network, upstream string) *cutProxy {
	t.Helper()
	listen := "127.0.0.1:0"
	if network == "unix" {
		dir, err := os.MkdirTemp("", "pcp-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		listen = filepath.Join(dir, "proxy.sock")
	}
	lis, err := net.Listen(network, listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: lis.Addr().String()}
	t.Cleanup(func() { lis.Close(); p.cut() })
	go func() {
		for {
			down, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial(network, upstream)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down, up)
			p.accepted++
			p.mu.Unlock()
			go func() { io.Copy(up, down); up.Close() }()
			go func() { io.Copy(down, up); down.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	if len(p.conns) > 0 {
		p.severed++
	}
	p.conns = nil
	p.cuts++
}

func TestIntegrationClientRunEventsAndFollowLogsAcrossDrops(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true})
	img := d.ImportImage(t, testimage.Image{})

	const lines = 60
	var steps []string
	var want strings.Builder
	for i := 1; i <= lines; i++ {
		steps = append(steps, fmt.Sprintf("echo line-%03d -- sleep 0.03", i))
		fmt.Fprintf(&want, "line-%03d\n", i)
	}
	spec := &pcnodev1.TaskSpec{
		Name:     "follow-across-drops",
		Image:    img.GetName(),
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
		Env:      []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: strings.Join(steps, " -- ")}},
	}

	ctx, cancel := context.WithTimeout(t.Context(), daemontest.WaitTimeout)
	defer cancel()

	// The run, over the daemon's own socket, with the iterator.
	ids := make(chan string, 1)
	type runResult struct {
		states []pcnodev1.TaskState
		err    error
	}
	ran := make(chan runResult, 1)
	go func() {
		var r runResult
		req := &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_Submit{Submit: &pcnodev1.SubmitTaskRequest{Spec: spec}}}
		for ev, err := range d.Client.RunEvents(ctx, req) {
			if err != nil {
				r.err = err
				break
			}
			if s := ev.GetStateChange(); s != nil {
				if len(r.states) == 0 {
					ids <- s.GetId()
				}
				r.states = append(r.states, s.GetState())
			}
		}
		ran <- r
	}()
	var id string
	select {
	case id = <-ids:
	case r := <-ran:
		t.Fatalf("RunEvents ended before the first state change: %v", r.err)
	}

	// The log, through the proxy that is cut three times on the way.
	proxy := newCutProxy(t, "unix", d.Socket)
	pc, err := client.Dial(proxy.addr)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", proxy.addr, err)
	}
	defer pc.Close()
	var (
		seqs    []uint64
		got     strings.Builder
		gaps    int
		cutAt   = []int{8, 25, 45}
		cutDone int
		cutTime time.Time
		resumes []time.Duration // cut to the next entry delivered
	)
	err = pc.FollowLogs(ctx, id, 0, func(r *pcnodev1.StreamLogsResponse) error {
		if r.GetGap() != nil {
			gaps++
		}
		if !cutTime.IsZero() {
			resumes = append(resumes, time.Since(cutTime))
			cutTime = time.Time{}
		}
		for _, e := range r.GetEntries() {
			seqs = append(seqs, e.GetSequence())
			got.Write(e.GetData())
		}
		if cutDone < len(cutAt) && strings.Count(got.String(), "\n") >= cutAt[cutDone] {
			cutDone++
			proxy.cut()
			cutTime = time.Now()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("FollowLogs(%s) = %v", id, err)
	}
	checkFollowed(t, id, got.String(), want.String(), seqs, gaps)
	if all := d.TaskLogs(t, id); len(all) != len(seqs) {
		t.Errorf("FollowLogs(%s) delivered %d entries, the daemon has %d", id, len(seqs), len(all))
	}
	proxy.mu.Lock()
	accepted, severed := proxy.accepted, proxy.severed
	proxy.mu.Unlock()
	if cutDone != len(cutAt) || severed < 1 || accepted < severed+1 {
		t.Errorf("the proxy was cut %d times (%d closing a connection) and accepted %d connections; want %d cuts, each that closed one followed by a reconnect", cutDone, severed, accepted, len(cutAt))
	}
	t.Logf("followed %d entries across %d cuts over %d connections; cut to next entry: %v", len(seqs), cutDone, accepted, resumes)

	r := <-ran
	if r.err != nil {
		t.Fatalf("RunEvents = %v", r.err)
	}
	if n := len(r.states); n == 0 || r.states[n-1] != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("RunEvents states = %v, want them to end SUCCEEDED", r.states)
	}
	if task := d.GetTask(t, id); task.GetExitCode() != 0 {
		t.Errorf("task %s exit code %d, want 0", id, task.GetExitCode())
	}
	if _, err := pc.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: "01M89HD3WXN8V5B8AE3ZVY9HSG"}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetTask(unknown id) through the proxy = %v, want ErrNotFound", err)
	}
}

// checkFollowed checks what FollowLogs delivered for task id: the output
// byte for byte, sequence numbers 1..n with no gap or duplicate, no gap
// reported.
func checkFollowed(t *testing.T, id, got, want string, seqs []uint64, gaps int) {
	t.Helper()
	if got != want {
		t.Errorf("FollowLogs(%s) output =\n%s\nwant\n%s", id, got, want)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("FollowLogs(%s) sequences = %v, want 1..%d without gaps or duplicates", id, seqs, len(seqs))
		}
	}
	if gaps != 0 {
		t.Errorf("FollowLogs(%s) reported %d gaps, want none (nothing was rotated)", id, gaps)
	}
}
