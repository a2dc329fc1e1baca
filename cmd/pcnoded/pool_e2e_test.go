package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// poolTaskMemory is what each pool test task requests; nodes are sized in
// multiples of it so that their capacity is in whole tasks.
const poolTaskMemory = 64 << 20

// poolSchedulerID is the pool's identity: the URI SAN of the client
// certificate the test makes for it, bound to submitter on every node.
const poolSchedulerID = "spiffe://site.test/scheduler"

// TestIntegrationPool runs a client.Pool over three real pcnoded processes
// of different sizes (4, 2 and 2 tasks of memory at once), each serving its
// own loopback TCP port with mutual TLS; one CA made by the test signs the
// three server certificates and the pool's client certificate, which the
// pool presents to every node as a scheduler (a submitter) through Dial's
// CA and client certificate files. A burst of tasks spreads by capacity;
// the daemon "c" is killed with SIGKILL mid-way, the tasks after that go to
// the survivors, the tasks c had accepted are still there when it restarts
// (on the same port) and finish, and across the three nodes every
// idempotency key is exactly one task, submitted by the pool's identity,
// that ran once. A task too big for every node is refused with each node's
// reason.
func TestIntegrationPool(t *testing.T) {
	const total, beforeKill = 30, 15
	slots := map[string]int64{"a": 4, "b": 2, "c": 2}
	names := []string{"a", "b", "c"}

	// One site CA for the three nodes and the scheduler.
	ca := daemontest.NewCA(t, "pool site CA")
	tlsDir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "scheduler.pem"), filepath.Join(tlsDir, "scheduler-key.pem")
	sched := ca.Client(t, daemontest.CertOptions{URI: []string{poolSchedulerID}})
	daemontest.WriteFile(t, caFile, ca.PEM)
	daemontest.WriteFile(t, certFile, sched.CertPEM)
	daemontest.WriteFile(t, keyFile, sched.KeyPEM)
	bindScheduler := func(c *config.Config) {
		c.API.Roles = append(c.API.Roles, config.RoleBinding{Identity: poolSchedulerID, Role: "submitter"})
	}

	// Size the nodes: allocatable memory = capacity - reserved.
	first := daemontest.Start(t, daemontest.Options{NoRace: true, TCP: true, CA: ca, Configure: bindScheduler})
	capMem := nodeOf(t, first).GetCapacity().GetMemoryBytes()
	size := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Node.Name = name
			c.Resources.ReservedMemory = config.MustQuantity(strconv.FormatInt(capMem-slots[name]*poolTaskMemory, 10))
		}
	}
	size("a")(&first.Config)
	first.Restart(t)
	ds := map[string]*daemontest.Daemon{"a": first}
	for _, n := range names[1:] {
		ds[n] = daemontest.Start(t, daemontest.Options{NoRace: true, TCP: true, CA: ca, Configure: func(c *config.Config) {
			bindScheduler(c)
			size(n)(c)
		}})
	}
	built := daemontest.BuildImage(t, testimage.Image{})
	var image string
	var cfgs []client.NodeConfig
	for _, n := range names {
		image = ds[n].ImportBuilt(t, built, testimage.FormatOCI).GetName()
		if got := nodeOf(t, ds[n]).GetAllocatable().GetMemoryBytes(); got != slots[n]*poolTaskMemory {
			t.Fatalf("node %s: allocatable memory %d, want %d", n, got, slots[n]*poolTaskMemory)
		}
		if !strings.HasPrefix(ds[n].TCPAddress, "127.0.0.1:") {
			t.Fatalf("node %s: TCP address %q, want a loopback port", n, ds[n].TCPAddress)
		}
		cfgs = append(cfgs, client.NodeConfig{Name: n, Address: ds[n].TCPAddress, Options: []client.Option{
			client.WithCA(caFile),
			client.WithClientCertificate(certFile, keyFile),
		}})
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	pool, err := client.NewPool(ctx, cfgs, client.WithHeartbeat(time.Second), client.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatalf("NewPool() = %v", err)
	}
	defer pool.Close()
	if err := pool.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady() = %v", err)
	}

	spec := func(i int) *pcnodev1.TaskSpec {
		s := e2eSpec(image, "steps", "PCTEST_STEPS=echo task "+strconv.Itoa(i)+" -- sleep 2s")
		s.Name = fmt.Sprintf("pool-%02d", i)
		s.Resources = &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{CpuMillis: 20, MemoryBytes: poolTaskMemory}}
		return s
	}
	key := func(i int) string { return fmt.Sprintf("pool-key-%02d", i) }
	placed := map[string]string{} // key → node
	perNode := map[string]int{}
	submit := func(i int) {
		t.Helper()
		pl, err := pool.Submit(ctx, spec(i), key(i))
		if err != nil {
			t.Fatalf("Submit(%s) = %v", key(i), err)
		}
		placed[key(i)] = pl.Node
		perNode[pl.Node]++
	}

	for i := range beforeKill {
		submit(i)
	}
	t.Logf("first %d tasks: %v", beforeKill, perNode)
	if perNode["a"] <= perNode["b"] || perNode["a"] <= perNode["c"] || perNode["b"] == 0 || perNode["c"] == 0 {
		t.Errorf("first %d tasks went %v, want all nodes used and a (4 slots) more than b and c (2 each)", beforeKill, perNode)
	}
	var onC []string
	for k, n := range placed {
		if n == "c" {
			onC = append(onC, k)
		}
	}

	// Kill c once its first task runs: it runs 2 at once, so its last
	// ones are still queued.
	slices.Sort(onC)
	if len(onC) > 0 {
		_, id, _ := pool.Placed(onC[0])
		ds["c"].WaitState(t, id, pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	}
	ds["c"].Kill(t)
	// Wait until the pool has seen c go (milliseconds: the socket closes
	// with the process). A submission racing the kill could reach c's
	// dying connection; its outcome would be unknown and the pool would
	// rightly keep retrying c, which stays down until every task is in.
	deadline := time.Now().Add(30 * time.Second)
	for poolStatus(pool, "c").Reachable {
		if time.Now().After(deadline) {
			t.Fatal("pool still sees c reachable 30s after SIGKILL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := beforeKill; i < total; i++ {
		submit(i)
		if placed[key(i)] == "c" {
			t.Errorf("Submit(%s) went to c, which was killed", key(i))
		}
	}
	t.Logf("all %d tasks: %v", total, perNode)

	// Follow every task through the pool while c is down; c's tasks wait.
	var wg sync.WaitGroup
	var mu sync.Mutex
	finals := map[string]*pcnodev1.Task{}
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task, err := pool.Wait(ctx, key(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Wait(%s) = %v", key(i), err)
				return
			}
			finals[key(i)] = task
		}()
	}
	time.Sleep(time.Second) // the waits of c's tasks retry meanwhile
	restarted := time.Now()
	ds["c"].Restart(t)
	wg.Wait()

	for i := range total {
		task := finals[key(i)]
		if task == nil {
			continue
		}
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if task.GetIdempotencyKey() != key(i) {
			t.Errorf("Wait(%s) = task with key %q", key(i), task.GetIdempotencyKey())
		}
	}

	// Every key is one task on exactly the node it was placed on, started once.
	seen := map[string][]string{}
	for _, n := range names {
		for _, task := range listAll(t, ds[n]) {
			k := task.GetIdempotencyKey()
			seen[k] = append(seen[k], n+"/"+task.GetId())
			if placed[k] != n {
				t.Errorf("task %s (key %s) is on %s, placed on %s", task.GetId(), k, n, placed[k])
			}
			if task.GetStartTime() == nil {
				t.Errorf("task %s (key %s) on %s never started", task.GetId(), k, n)
			}
			if by := task.GetSubmittedBy(); by != poolSchedulerID {
				t.Errorf("task %s (key %s) on %s submitted by %q, want the pool's %q", task.GetId(), k, n, by, poolSchedulerID)
			}
		}
	}
	for i := range total {
		if got := seen[key(i)]; len(got) != 1 {
			t.Errorf("key %s: tasks %v across the nodes, want exactly one", key(i), got)
		}
	}
	if len(seen) != total {
		t.Errorf("%d keys across the nodes, want %d", len(seen), total)
	}
	for _, k := range onC {
		if finals[k].GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Errorf("task %s accepted by c before the kill: %v", k, finals[k].GetState())
		}
	}
	if len(onC) == 0 {
		t.Errorf("no task was on c when it was killed")
	}
	// c runs 2 at once and had more: some of its tasks started only
	// after the restart.
	late := 0
	for _, k := range onC {
		if finals[k].GetStartTime().AsTime().After(restarted) {
			late++
		}
	}
	if len(onC) > int(slots["c"]) && late == 0 {
		t.Errorf("none of c's %d tasks started after its restart, want those queued at the kill to", len(onC))
	}
	t.Logf("c had %d tasks at the kill; %d started after its restart", len(onC), late)

	// Too big for every node: refused with each node's reason.
	if err := pool.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady() after the restart = %v", err)
	}
	big := spec(99)
	big.Resources.Requests.MemoryBytes = 8 * poolTaskMemory
	_, err = pool.Submit(ctx, big, "pool-key-big")
	var nf *client.NoFitError
	if !errors.Is(err, client.ErrNoNodeFits) || !errors.As(err, &nf) {
		t.Fatalf("Submit(8 tasks of memory) = %v, want ErrNoNodeFits", err)
	}
	if len(nf.Reasons) != len(names) {
		t.Errorf("NoFitError reasons = %v, want one per node", nf.Reasons)
	}
	for _, r := range nf.Reasons {
		want := fmt.Sprintf("allocatable %d", slots[r.Node]*poolTaskMemory)
		if !strings.Contains(r.Reason, "memory") || !strings.Contains(r.Reason, want) {
			t.Errorf("reason for %s = %q, want it to name memory and %q", r.Node, r.Reason, want)
		}
	}
	if _, _, ok := pool.Placed("pool-key-big"); ok {
		t.Errorf("Placed(pool-key-big) = bound, want a refused key bound to no node")
	}
}

func nodeOf(t *testing.T, d *daemontest.Daemon) *pcnodev1.Node {
	t.Helper()
	resp, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
	if err != nil {
		t.Fatalf("GetNode() = %v", client.FromError(err))
	}
	return resp.GetNode()
}

func poolStatus(p *client.Pool, name string) client.NodeStatus {
	for _, s := range p.Nodes() {
		if s.Name == name {
			return s
		}
	}
	return client.NodeStatus{}
}

// listAll returns every task on d (all pages).
func listAll(t *testing.T, d *daemontest.Daemon) []*pcnodev1.Task {
	t.Helper()
	var out []*pcnodev1.Task
	token := ""
	for {
		resp, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatalf("ListTasks() = %v", client.FromError(err))
		}
		out = append(out, resp.GetTasks()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}
