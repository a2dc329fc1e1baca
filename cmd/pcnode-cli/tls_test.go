package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// testCA is a certificate authority made at test time.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

var serial int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, file: writePEM(t, filepath.Join(dir, name+"-ca.pem"), "CERTIFICATE", der)}
}

// issue signs a leaf for name (CN and DNS SAN, plus 127.0.0.1 for a
// server) and returns its certificate and key files.
func (ca *testCA) issue(t *testing.T, dir, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der), writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kder)
}

// fakeNode is a hand-written pcnoded over TLS: the calls the CLI makes,
// answered from fixtures, each recording who called.
type fakeNode struct {
	pcnodev1.UnimplementedTaskServiceServer
	pcnodev1.UnimplementedNodeServiceServer
	pcnodev1.UnimplementedImageServiceServer

	mu       sync.Mutex
	callers  []string // client certificate CN of each call
	draining bool
}

func (f *fakeNode) saw(ctx context.Context) {
	who := "?"
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			who = ti.State.PeerCertificates[0].Subject.CommonName
			if ti.State.Version != tls.VersionTLS13 {
				who += " (not TLS 1.3)"
			}
		}
	}
	f.mu.Lock()
	f.callers = append(f.callers, who)
	f.mu.Unlock()
}

func (f *fakeNode) node() *pcnodev1.Node {
	n := fixtureNode()
	n.Draining = f.draining
	return n
}

func (f *fakeNode) GetNode(ctx context.Context, _ *pcnodev1.GetNodeRequest) (*pcnodev1.GetNodeResponse, error) {
	f.saw(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &pcnodev1.GetNodeResponse{Node: f.node()}, nil
}

func (f *fakeNode) DrainNode(ctx context.Context, _ *pcnodev1.DrainNodeRequest) (*pcnodev1.DrainNodeResponse, error) {
	f.saw(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.draining = true
	return &pcnodev1.DrainNodeResponse{Node: f.node()}, nil
}

func (f *fakeNode) ResumeNode(ctx context.Context, _ *pcnodev1.ResumeNodeRequest) (*pcnodev1.ResumeNodeResponse, error) {
	f.saw(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.draining = false
	return &pcnodev1.ResumeNodeResponse{Node: f.node()}, nil
}

func (f *fakeNode) ListTasks(ctx context.Context, _ *pcnodev1.ListTasksRequest) (*pcnodev1.ListTasksResponse, error) {
	f.saw(ctx)
	return &pcnodev1.ListTasksResponse{Tasks: fixtureTasks()}, nil
}

func (f *fakeNode) SubmitTask(ctx context.Context, _ *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
	f.saw(ctx)
	st, _ := status.New(codes.InvalidArgument, "invalid task spec").WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "spec.inputs[0].host_path", Description: "not under a data root"},
		{Field: "spec.env[1].name", Description: "must match [A-Za-z_][A-Za-z0-9_]*"},
	}})
	return nil, st.Err()
}

func (f *fakeNode) CancelTask(ctx context.Context, req *pcnodev1.CancelTaskRequest) (*pcnodev1.CancelTaskResponse, error) {
	f.saw(ctx)
	return nil, status.Error(codes.PermissionDenied, "cancelling another identity's task needs role admin")
}

func (f *fakeNode) WatchTasks(req *pcnodev1.WatchTasksRequest, stream pcnodev1.TaskService_WatchTasksServer) error {
	f.saw(stream.Context())
	if !req.GetSendInitial() {
		return status.Error(codes.InvalidArgument, "want send_initial")
	}
	for i, tk := range fixtureTasks() {
		ev := &pcnodev1.TaskEvent{TaskId: tk.GetId(), Time: timestamppb.New(fixedNow), Revision: uint64(i + 1), Event: &pcnodev1.TaskEvent_StateChange{StateChange: tk}}
		if err := stream.Send(&pcnodev1.WatchTasksResponse{Event: ev}); err != nil {
			return err
		}
	}
	<-stream.Context().Done() // a watch lasts until the caller goes
	return nil
}

func (f *fakeNode) ListImages(ctx context.Context, _ *pcnodev1.ListImagesRequest) (*pcnodev1.ListImagesResponse, error) {
	f.saw(ctx)
	return &pcnodev1.ListImagesResponse{Images: fixtureImages()}, nil
}

func (f *fakeNode) RemoveImage(ctx context.Context, _ *pcnodev1.RemoveImageRequest) (*pcnodev1.RemoveImageResponse, error) {
	f.saw(ctx)
	return nil, status.Error(codes.PermissionDenied, "RemoveImage needs role admin; spiffe://example.org/cli has submitter")
}

// PullImage reports two layers of 3 MiB and 1 MiB and a 1 KiB config the
// way the daemon does: each announced as waiting, then downloading, then
// all done.
func (f *fakeNode) PullImage(req *pcnodev1.PullImageRequest, stream pcnodev1.ImageService_PullImageServer) error {
	f.saw(stream.Context())
	const mib = 1 << 20
	steps := []*pcnodev1.ImageProgress{
		{Status: "waiting", TotalBytes: 1024},
		{Status: "waiting", TotalBytes: 3 * mib},
		{Status: "waiting", TotalBytes: mib},
		{Status: "downloading", DoneBytes: mib, TotalBytes: 3 * mib},
		{Status: "downloading", DoneBytes: mib / 2, TotalBytes: mib},
		{Status: "downloading", DoneBytes: 2 * mib, TotalBytes: 3 * mib},
		{Status: "downloading", DoneBytes: mib, TotalBytes: mib},
		{Status: "done", DoneBytes: 1024, TotalBytes: 1024},
		{Status: "done", DoneBytes: 3 * mib, TotalBytes: 3 * mib},
		{Status: "done", DoneBytes: mib, TotalBytes: mib},
	}
	for _, p := range steps {
		p.Reference = req.GetReference()
		if err := stream.Send(&pcnodev1.PullImageResponse{Result: &pcnodev1.PullImageResponse_Progress{Progress: p}}); err != nil {
			return err
		}
	}
	return stream.Send(&pcnodev1.PullImageResponse{Result: &pcnodev1.PullImageResponse_Image{Image: fixtureImages()[1]}})
}

// tlsFixture is a fake node behind a real TLS 1.3 listener that requires a
// client certificate from clientCA, with the files a CLI user holds.
type tlsFixture struct {
	node                      *fakeNode
	addr                      string // 127.0.0.1:port
	serverCA, otherCA         *testCA
	clientCert, clientKey     string
	strangerCert, strangerKey string // signed by a CA the node does not trust
}

func startTLSNode(t *testing.T) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &tlsFixture{node: &fakeNode{}, serverCA: newCA(t, dir, "server"), otherCA: newCA(t, dir, "other")}
	clientCA := newCA(t, dir, "client")
	srvCert, srvKey := fx.serverCA.issue(t, dir, "node.test", true)
	fx.clientCert, fx.clientKey = clientCA.issue(t, dir, "cli-user", false)
	fx.strangerCert, fx.strangerKey = fx.otherCA.issue(t, dir, "stranger", false)
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})))
	pcnodev1.RegisterTaskServiceServer(srv, fx.node)
	pcnodev1.RegisterNodeServiceServer(srv, fx.node)
	pcnodev1.RegisterImageServiceServer(srv, fx.node)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	fx.addr = lis.Addr().String()
	return fx
}

// flags are the command-line flags of a user holding the right files.
func (fx *tlsFixture) flags() []string {
	return []string{"--address", fx.addr, "--tls-ca", fx.serverCA.file, "--tls-cert", fx.clientCert, "--tls-key", fx.clientKey}
}

// TestTLSCommands runs the node, list, image and drain commands over
// mutual TLS against the fake node and checks their real output.
func TestTLSCommands(t *testing.T) {
	fixClock(t)
	fx := startTLSNode(t)
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(fx.flags(), args...)...)
	}
	var want bytes.Buffer
	printNode(&want, fixtureNode())
	if out, errOut, code := cli("node"); code != exitOK || out != want.String() {
		t.Errorf("node over mTLS = exit %d, stdout %q, stderr %q; want the node table", code, out, errOut)
	}
	want.Reset()
	printTaskTable(&want, fixtureTasks())
	if out, errOut, code := cli("list"); code != exitOK || out != want.String() {
		t.Errorf("list over mTLS = exit %d, stdout %q, stderr %q; want the list table", code, out, errOut)
	}
	want.Reset()
	printImageTable(&want, fixtureImages())
	if out, errOut, code := cli("image", "ls"); code != exitOK || out != want.String() {
		t.Errorf("image ls over mTLS = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := cli("node", "drain"); code != exitOK || !strings.Contains(out, "node gpu-node-07 is draining") {
		t.Errorf("node drain = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code := cli("-o", "json", "node", "resume")
	if code != exitOK || strings.Contains(out, `"draining"`) {
		t.Errorf("node resume -o json = exit %d, stdout %q, stderr %q; want a node that is not draining", code, out, errOut)
	}
	if again, _, _ := cli("-o", "json", "node", "resume"); again != out {
		t.Errorf("node resume -o json differs between runs:\n%s\n---\n%s", out, again)
	}
	fx.node.mu.Lock()
	callers := append([]string(nil), fx.node.callers...)
	fx.node.mu.Unlock()
	for _, c := range callers {
		if c != "cli-user" {
			t.Errorf("the node saw caller %q, want every call from the client certificate cli-user over TLS 1.3 (all: %q)", c, callers)
			break
		}
	}
	if len(callers) != 6 {
		t.Errorf("the node saw %d calls, want 6", len(callers))
	}
}

// TestTLSEnvironment checks that PCNODE_* variables configure the
// connection and that a flag wins over its variable.
func TestTLSEnvironment(t *testing.T) {
	fx := startTLSNode(t)
	t.Setenv(envAddress, fx.addr)
	t.Setenv(envTLSCA, fx.serverCA.file)
	t.Setenv(envTLSCert, fx.clientCert)
	t.Setenv(envTLSKey, fx.clientKey)
	if out, errOut, code := runCLI(t, "node"); code != exitOK || !strings.Contains(out, "gpu-node-07") {
		t.Errorf("node with PCNODE_* only = exit %d, %q, %q", code, out, errOut)
	}
	// The environment names the wrong CA; the flag the right one.
	t.Setenv(envTLSCA, fx.otherCA.file)
	if _, errOut, code := runCLI(t, "node"); code != exitInvalid || !strings.Contains(errOut, "$PCNODE_TLS_CA") {
		t.Errorf("node with the wrong CA in $PCNODE_TLS_CA = exit %d, stderr %q; want exit 1 naming $PCNODE_TLS_CA", code, errOut)
	}
	if out, errOut, code := runCLI(t, "--tls-ca", fx.serverCA.file, "node"); code != exitOK || !strings.Contains(out, "gpu-node-07") {
		t.Errorf("--tls-ca over a wrong $PCNODE_TLS_CA = exit %d, %q, %q; want the flag to win", code, out, errOut)
	}
	// The environment names a dead address; the flag the node.
	t.Setenv(envTLSCA, fx.serverCA.file)
	t.Setenv(envAddress, "127.0.0.1:1")
	if out, errOut, code := runCLI(t, "--address", fx.addr, "node"); code != exitOK || !strings.Contains(out, "gpu-node-07") {
		t.Errorf("--address over $PCNODE_ADDRESS = exit %d, %q, %q; want the flag to win", code, out, errOut)
	}
}

// TestTLSFailures checks that each way a TLS connection fails ends with
// exit status 1 and a message saying what to change.
func TestTLSFailures(t *testing.T) {
	fx := startTLSNode(t)
	t.Setenv("DATA", t.TempDir()) // task.json's {{ env.DATA }}
	base := []string{"--address", fx.addr}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"wrong CA", append(base, "--tls-ca", fx.otherCA.file, "--tls-cert", fx.clientCert, "--tls-key", fx.clientKey, "node"),
			[]string{"certificate signed by unknown authority", "is not signed by a CA in " + fx.otherCA.file + " (from --tls-ca)", "set --tls-ca ($PCNODE_TLS_CA)"}},
		{"system roots", append(base, "--tls-cert", fx.clientCert, "--tls-key", fx.clientKey, "node"),
			[]string{"not signed by a CA in the system roots", "set --tls-ca"}},
		{"no client certificate", append(base, "--tls-ca", fx.serverCA.file, "node"),
			[]string{"requires a client certificate (mutual TLS): set --tls-cert and --tls-key"}},
		{"no client certificate (list)", append(base, "--tls-ca", fx.serverCA.file, "list"),
			[]string{"requires a client certificate (mutual TLS): set --tls-cert and --tls-key"}},
		{"client certificate from another CA", append(base, "--tls-ca", fx.serverCA.file, "--tls-cert", fx.strangerCert, "--tls-key", fx.strangerKey, "node"),
			[]string{"your client certificate " + fx.strangerCert + " (from --tls-cert): it must be signed by a CA in the node's client CA bundle ([api] client_ca_file)"}},
		{"server name mismatch", append(base, "--tls-ca", fx.serverCA.file, "--tls-cert", fx.clientCert, "--tls-key", fx.clientKey, "--tls-server-name", "other.test", "node"),
			[]string{"other.test", "set --tls-server-name ($PCNODE_TLS_SERVER_NAME)"}},
		{"nobody listening", []string{"--address", "127.0.0.1:1", "--tls-ca", fx.serverCA.file, "node"},
			[]string{"127.0.0.1:1 (from --address)", "is pcnoded running and listening"}},
		{"CA file missing", append(base, "--tls-ca", "/nonexistent/ca.pem", "node"), []string{"--tls-ca: open /nonexistent/ca.pem"}},
		{"CA file not PEM", append(base, "--tls-ca", fx.clientKey, "node"), []string{"--tls-ca \"" + fx.clientKey + "\": no PEM certificate in the file"}},
		{"permission denied", append(fx.flags(), "image", "rm", "pcnode.test/cli:1"),
			[]string{"RemoveImage needs role admin", "pcnode-cli image rm needs the admin role (or higher)", "client certificate's identity"}},
		{"cancel another's task", append(fx.flags(), "cancel", "01JDQ3X7Z0A8B9C7D6E5F4G3H2"),
			[]string{"needs role admin", "needs the submitter role for your own tasks and admin for another identity's"}},
		{"invalid argument lists the fields", append(fx.flags(), "submit", specTestdata+"/pcnode/task.json"),
			[]string{"invalid task spec", "spec.inputs[0].host_path: not under a data root", "spec.env[1].name: must match", "fix the field(s) listed above"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.args...)
			t.Logf("stderr:\n%s", errOut)
			if code != exitInvalid {
				t.Errorf("pcnode-cli %q = exit %d, want %d (stdout %q, stderr %q)", tt.args, code, exitInvalid, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("pcnode-cli %q stderr = %q, want it to contain %q", tt.args, errOut, w)
				}
			}
		})
	}
}
