package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// envPeerHelper, set to a socket path, makes the test binary a helper that
// calls GetNode and SubmitTask on that socket and prints each call's code
// and message (authPeerHelper); the unix-socket role test runs it as
// another uid.
const envPeerHelper = "PCNODE_TEST_PEER_HELPER_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(envPeerHelper); sock != "" {
		os.Exit(authPeerHelper(sock))
	}
	os.Exit(m.Run())
}

func authPeerHelper(sock string) int {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("dial:", err)
		return 2
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pcnodev1.NewNodeServiceClient(conn).GetNode(ctx, &pcnodev1.GetNodeRequest{})
	fmt.Printf("GetNode %v %s\n", status.Code(err), status.Convert(err).Message())
	_, err = pcnodev1.NewTaskServiceClient(conn).SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: e2eSpec("pcnode.test/none:1", "sleep")})
	fmt.Printf("SubmitTask %v %s\n", status.Code(err), status.Convert(err).Message())
	return 0
}

// authClients are the API's clients on one connection.
type authClients struct {
	tasks  pcnodev1.TaskServiceClient
	nodes  pcnodev1.NodeServiceClient
	images pcnodev1.ImageServiceClient
}

func authDial(t *testing.T, d *daemontest.Daemon, c *tls.Config) authClients {
	t.Helper()
	conn := d.DialTLS(t, c)
	return authClients{pcnodev1.NewTaskServiceClient(conn), pcnodev1.NewNodeServiceClient(conn), pcnodev1.NewImageServiceClient(conn)}
}

// authGetNode calls GetNode over a fresh TLS connection made with c.
func authGetNode(t *testing.T, d *daemontest.Daemon, c *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := authDial(t, d, c).nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{})
	return err
}

// authWantDenied fails t unless err is PERMISSION_DENIED naming role.
func authWantDenied(t *testing.T, what string, err error, role string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "needs role "+role) {
		t.Errorf("%s = %v %q, want PERMISSION_DENIED naming role %s", what, st.Code(), st.Message(), role)
	}
}

// TestIntegrationTLSHandshakeRefusals: over the real TCP listener, a
// client certificate of the client CA that is valid now is served; no
// certificate, another CA's, an expired one, a not-yet-valid one and
// plain-text TCP are each refused before any call is served.
func TestIntegrationTLSHandshakeRefusals(t *testing.T) {
	// A CA made by the test (as several daemons of one scheduler share).
	ca := daemontest.NewCA(t, "site CA")
	d := daemontest.Start(t, daemontest.Options{TCP: true, CA: ca, Configure: func(c *config.Config) {
		c.API.Roles = append(c.API.Roles, config.RoleBinding{Identity: "spiffe://test/viewer", Role: "viewer"})
	}})
	if d.CA != ca {
		t.Fatalf("daemon's CA is not the one given in Options.CA")
	}
	roots := d.CA.Pool()
	id := []string{"spiffe://test/viewer"}
	if err := authGetNode(t, d, daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: id}))); err != nil {
		t.Fatalf("GetNode with a valid client certificate = %v", err)
	}
	if err := authGetNode(t, d, d.RoleTLS(t, "viewer")); err != nil {
		t.Fatalf("GetNode as daemontest's viewer = %v", err)
	}
	other := daemontest.NewCA(t, "other CA")
	now := time.Now()
	refused := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", daemontest.ClientTLS(roots, nil)},
		{"another CA's certificate", daemontest.ClientTLS(roots, other.Client(t, daemontest.CertOptions{URI: id}))},
		{"expired certificate", daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: id, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}))},
		{"not yet valid certificate", daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: id, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}))},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			// The handshake itself fails: TLS 1.3 clients learn of the
			// refusal on their first read, as a TLS alert.
			conn, err := tls.Dial("tcp", d.TCPAddress, tt.cfg)
			if err == nil {
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "tls:") {
				t.Errorf("TLS handshake = %v, want a TLS alert", err)
			}
			err = authGetNode(t, d, tt.cfg)
			if status.Code(err) != codes.Unavailable {
				t.Errorf("GetNode = %v, want UNAVAILABLE (handshake refused)", err)
			}
		})
	}
	t.Run("plain-text TCP", func(t *testing.T) {
		conn, err := grpc.NewClient("passthrough:///"+d.TCPAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err = pcnodev1.NewNodeServiceClient(conn).GetNode(ctx, &pcnodev1.GetNodeRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("GetNode over plain-text TCP = %v, want UNAVAILABLE", err)
		}
	})
	t.Run("TLS 1.2", func(t *testing.T) {
		c := daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: id}))
		c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		if conn, err := tls.Dial("tcp", d.TCPAddress, c); err == nil {
			conn.Close()
			t.Errorf("TLS 1.2 handshake succeeded, want it refused (TLS 1.3 minimum)")
		}
	})
}

// TestIntegrationTLSWithoutClientAuthDevSwitch: with the development
// switch a client without a certificate is served (as "anonymous", with the
// role bound to it) and the daemon logs a WARNING at start.
func TestIntegrationTLSWithoutClientAuthDevSwitch(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{TCP: true, Configure: func(c *config.Config) {
		c.API.InsecureTCPWithoutClientAuth = true
		c.API.ClientCAFile = ""
		c.API.Roles = append(c.API.Roles, config.RoleBinding{Identity: "anonymous", Role: "viewer"})
	}})
	cfg := daemontest.ClientTLS(d.CA.Pool(), nil)
	if err := authGetNode(t, d, cfg); err != nil {
		t.Fatalf("GetNode without a client certificate under the dev switch = %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := authDial(t, d, cfg).nodes.DrainNode(ctx, &pcnodev1.DrainNodeRequest{})
	authWantDenied(t, "anonymous DrainNode", err, "admin")
	if logs := d.Logs(); !strings.Contains(logs, "WARNING: api.insecure_tcp_without_client_auth = true") {
		t.Errorf("daemon log has no WARNING about the dev switch:\n%s", logs)
	}
}

// TestIntegrationRoles: through the TLS listener, a viewer reads but
// cannot submit; a submitter submits (the task records it), cannot drain,
// resume, clear a GPU or remove an image, and cannot cancel or delete
// another identity's task nor reach it through an idempotency key; an
// admin can. Denied calls name the role needed and are logged with the
// identity.
func TestIntegrationRoles(t *testing.T) {
	const (
		viewerID = "spiffe://test/viewer"
		subA     = "spiffe://test/submitter-a"
		subB     = "dns:submitter-b.test"
	)
	d := daemontest.Start(t, daemontest.Options{TCP: true, Configure: func(c *config.Config) {
		c.API.Roles = append(c.API.Roles,
			config.RoleBinding{Identity: viewerID, Role: "viewer"},
			config.RoleBinding{Identity: subA, Role: "submitter"},
			config.RoleBinding{Identity: subB, Role: "submitter"})
	}})
	img := e2eTestImage(t, d).GetName()
	roots := d.CA.Pool()
	viewer := authDial(t, d, daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: []string{viewerID}})))
	a := authDial(t, d, daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{URI: []string{subA}, DNS: []string{"ignored.test"}})))
	b := authDial(t, d, daemontest.ClientTLS(roots, d.CA.Client(t, daemontest.CertOptions{DNS: []string{"submitter-b.test"}, CN: "ignored"})))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	spec := func() *pcnodev1.TaskSpec { return e2eSpec(img, "sleep", "DURATION=60s") }
	const key = "scheduler/run-1"

	// Viewer: reads, never writes.
	if _, err := viewer.nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{}); err != nil {
		t.Errorf("viewer GetNode = %v", err)
	}
	if _, err := viewer.tasks.ListTasks(ctx, &pcnodev1.ListTasksRequest{}); err != nil {
		t.Errorf("viewer ListTasks = %v", err)
	}
	_, err := viewer.tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec()})
	authWantDenied(t, "viewer SubmitTask", err, "submitter")
	pull, err := viewer.images.PullImage(ctx, &pcnodev1.PullImageRequest{Reference: img})
	if err == nil {
		_, err = pull.Recv()
	}
	authWantDenied(t, "viewer PullImage", err, "submitter")

	// Submitter A: submits; the task says who.
	ra, err := a.tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec(), IdempotencyKey: key})
	if err != nil {
		t.Fatalf("submitter SubmitTask = %v", err)
	}
	taskA := ra.GetTask()
	if taskA.GetSubmittedBy() != subA {
		t.Errorf("task submitted_by = %q, want %q", taskA.GetSubmittedBy(), subA)
	}
	_, err = a.nodes.DrainNode(ctx, &pcnodev1.DrainNodeRequest{})
	authWantDenied(t, "submitter DrainNode", err, "admin")
	_, err = a.nodes.ResumeNode(ctx, &pcnodev1.ResumeNodeRequest{})
	authWantDenied(t, "submitter ResumeNode", err, "admin")
	_, err = a.nodes.ClearGpuHealth(ctx, &pcnodev1.ClearGpuHealthRequest{Uuid: "GPU-0"})
	authWantDenied(t, "submitter ClearGpuHealth", err, "admin")
	_, err = a.images.RemoveImage(ctx, &pcnodev1.RemoveImageRequest{Reference: img})
	authWantDenied(t, "submitter RemoveImage", err, "admin")

	// Submitter B: not A's task, not even through A's idempotency key.
	_, err = b.tasks.CancelTask(ctx, &pcnodev1.CancelTaskRequest{TaskId: taskA.GetId()})
	authWantDenied(t, "other submitter CancelTask", err, "admin")
	_, err = b.tasks.DeleteTask(ctx, &pcnodev1.DeleteTaskRequest{TaskId: taskA.GetId()})
	authWantDenied(t, "other submitter DeleteTask", err, "admin")
	rb, err := b.tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec(), IdempotencyKey: key})
	if err != nil {
		t.Fatalf("other submitter SubmitTask(same key) = %v", err)
	}
	taskB := rb.GetTask()
	if rb.GetExisting() || taskB.GetId() == taskA.GetId() || taskB.GetSubmittedBy() != subB || taskB.GetIdempotencyKey() != key {
		t.Errorf("other submitter's same key = task %s existing %v by %q key %q, want a new task of %s with key %q",
			taskB.GetId(), rb.GetExisting(), taskB.GetSubmittedBy(), taskB.GetIdempotencyKey(), subB, key)
	}
	if again, err := a.tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec(), IdempotencyKey: key}); err != nil || !again.GetExisting() || again.GetTask().GetId() != taskA.GetId() {
		t.Errorf("submitter's own key again = %s existing %v, %v; want %s existing", again.GetTask().GetId(), again.GetExisting(), err, taskA.GetId())
	}
	if got := d.GetTask(t, taskA.GetId()).GetState(); got == pcnodev1.TaskState_TASK_STATE_CANCELLED {
		t.Errorf("task after refused cancel is %v", got)
	}

	// Each cancels its own; the admin (root on the socket) any.
	if _, err := a.tasks.CancelTask(ctx, &pcnodev1.CancelTaskRequest{TaskId: taskA.GetId()}); err != nil {
		t.Errorf("submitter CancelTask(own) = %v", err)
	}
	if _, err := d.Client.Tasks.CancelTask(ctx, &pcnodev1.CancelTaskRequest{TaskId: taskB.GetId()}); err != nil {
		t.Errorf("admin CancelTask(another's) = %v", err)
	}
	own := d.Submit(t, e2eSpec(img, "sleep", "DURATION=0s"))
	if own.GetSubmittedBy() != "uid:0" {
		t.Errorf("task submitted on the socket by root: submitted_by = %q, want uid:0", own.GetSubmittedBy())
	}
	done := d.WaitTask(t, taskA.GetId(), time.Minute)
	if _, err := a.tasks.DeleteTask(ctx, &pcnodev1.DeleteTaskRequest{TaskId: done.GetId()}); err != nil {
		t.Errorf("submitter DeleteTask(own, %v) = %v", done.GetState(), err)
	}

	logs := d.Logs()
	for _, want := range []string{
		`msg="api call refused" method=/pcnode.v1.TaskService/SubmitTask identity=spiffe://test/viewer role=viewer need=submitter`,
		`msg="api call" method=/pcnode.v1.TaskService/CancelTask identity=dns:submitter-b.test role=submitter code=PermissionDenied task=` + taskA.GetId(),
		`msg="api call" method=/pcnode.v1.TaskService/CancelTask identity=spiffe://test/submitter-a role=submitter code=OK task=` + taskA.GetId(),
		`msg="api call" method=/pcnode.v1.TaskService/SubmitTask identity=uid:0 role=admin code=OK task=` + own.GetId(),
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("daemon log lacks %q", want)
		}
	}
}

// TestIntegrationUnixPeerRoles: a process of another uid that can reach
// the socket is refused when no role is bound to its uid or groups, and
// gets the role of a supplementary group that is bound (SO_PEERGROUPS).
func TestIntegrationUnixPeerRoles(t *testing.T) {
	const (
		uid       = 65533
		sockGroup = 65532 // reaches the socket, bound to nothing
		viewGroup = 65531 // bound to viewer
	)
	// The socket is 0660 of group sockGroup, in a directory others may enter.
	d := daemontest.Start(t, daemontest.Options{SharedDirs: true, Configure: func(c *config.Config) {
		c.API.SocketGroup = strconv.Itoa(sockGroup)
		c.API.Roles = append(c.API.Roles, config.RoleBinding{Identity: "gid:" + strconv.Itoa(viewGroup), Role: "viewer"})
	}})
	helper := authHelperBinary(t)
	run := func(groups ...uint32) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), helper)
		cmd.Env = append(os.Environ(), envPeerHelper+"="+d.Socket)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: sockGroup, Groups: groups}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d groups %v: %v\n%s", uid, groups, err, out)
		}
		return string(out)
	}
	out := run()
	for _, want := range []string{
		"GetNode PermissionDenied NodeService/GetNode needs role viewer; identity uid:65533 has no role",
		"SubmitTask PermissionDenied TaskService/SubmitTask needs role submitter; identity uid:65533 has no role",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("unmapped peer: helper printed\n%s\nwant a line %q", out, want)
		}
	}
	out = run(viewGroup)
	for _, want := range []string{
		"GetNode OK",
		"SubmitTask PermissionDenied TaskService/SubmitTask needs role submitter; identity uid:65533 has role viewer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("peer in group %d: helper printed\n%s\nwant a line %q", viewGroup, out, want)
		}
	}
}

// authHelperBinary copies the test binary where another uid can run it.
func authHelperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := daemontest.SharedDir(t)
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(dir, "helper")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// authRotate replaces the server certificate, key and client CA on disk
// with ones of a new CA, and returns that CA.
func authRotate(t *testing.T, d *daemontest.Daemon) *daemontest.CA {
	t.Helper()
	ca := daemontest.NewCA(t, "rotated CA")
	srv := ca.Server(t)
	daemontest.WriteFile(t, d.TLSFiles.ClientCA, ca.PEM)
	daemontest.WriteFile(t, d.TLSFiles.Key, srv.KeyPEM)
	daemontest.WriteFile(t, d.TLSFiles.Cert, srv.CertPEM)
	return ca
}

// TestIntegrationTLSRotation: a server certificate, key and client CA
// replaced on disk are used for new connections without a restart, found
// by polling and at once on SIGHUP; a broken file is logged and the
// material in use kept.
func TestIntegrationTLSRotation(t *testing.T) {
	const id = "cn:rotating-client"
	roles := func(interval time.Duration) func(*config.Config) {
		return func(c *config.Config) {
			c.API.TLSReloadInterval = config.Duration{Duration: interval}
			c.API.Roles = append(c.API.Roles, config.RoleBinding{Identity: id, Role: "viewer"})
		}
	}
	client := func(ca *daemontest.CA) *tls.Config {
		return daemontest.ClientTLS(ca.Pool(), ca.Client(t, daemontest.CertOptions{CN: "rotating-client"}))
	}
	// eventually waits until GetNode with c succeeds.
	eventually := func(t *testing.T, d *daemontest.Daemon, c *tls.Config, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			err := authGetNode(t, d, c)
			if err == nil {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("GetNode with the rotated material still fails after %v: %v", within, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("polling", func(t *testing.T) {
		d := daemontest.Start(t, daemontest.Options{TCP: true, Configure: roles(200 * time.Millisecond)})
		old := client(d.CA)
		if err := authGetNode(t, d, old); err != nil {
			t.Fatalf("GetNode before rotation = %v", err)
		}
		pid := d.PID()
		ca := authRotate(t, d)
		took := eventually(t, d, client(ca), 10*time.Second)
		t.Logf("rotated material served %v after the files changed", took.Round(time.Millisecond))
		if err := authGetNode(t, d, old); err == nil {
			t.Errorf("GetNode with the old CA's client certificate after rotation succeeded, want it refused")
		}
		// A broken CA bundle is refused and the rotated material stays.
		daemontest.WriteFile(t, d.TLSFiles.ClientCA, []byte("not a certificate\n"))
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(d.Logs(), "TLS material not reloaded; keeping what is in use") {
			if time.Now().After(deadline) {
				t.Fatalf("no error logged for a broken client_ca_file")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := authGetNode(t, d, client(ca)); err != nil {
			t.Errorf("GetNode after a broken CA file = %v, want the material in use kept", err)
		}
		if d.PID() != pid || !d.Running() {
			t.Errorf("daemon restarted (pid %d, now %d)", pid, d.PID())
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		d := daemontest.Start(t, daemontest.Options{TCP: true, Configure: roles(time.Hour)})
		if err := authGetNode(t, d, client(d.CA)); err != nil {
			t.Fatalf("GetNode before rotation = %v", err)
		}
		ca := authRotate(t, d)
		// Polling is an hour away: the old material is still in use.
		if err := authGetNode(t, d, client(ca)); err == nil {
			t.Fatalf("rotated material served before SIGHUP with a 1h reload interval")
		}
		if err := syscall.Kill(d.PID(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		took := eventually(t, d, client(ca), 5*time.Second)
		t.Logf("rotated material served %v after SIGHUP", took.Round(time.Millisecond))
		if !d.Running() {
			t.Errorf("daemon not running after SIGHUP")
		}
	})
}
