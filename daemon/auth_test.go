package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"crypto/x509/pkix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestMethodRolesCoverEveryMethod walks every method of every service
// pcnoded serves (the API's, as daemon/server registers them, health,
// reflection) and fails for one missing from the access table, and for a
// table entry no service has.
func TestMethodRolesCoverEveryMethod(t *testing.T) {
	srv := grpc.NewServer()
	pcnodev1.RegisterTaskServiceServer(srv, pcnodev1.UnimplementedTaskServiceServer{})
	pcnodev1.RegisterNodeServiceServer(srv, pcnodev1.UnimplementedNodeServiceServer{})
	pcnodev1.RegisterImageServiceServer(srv, pcnodev1.UnimplementedImageServiceServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	reflection.Register(srv)
	served := map[string]bool{}
	for svc, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			served[full] = true
			if r, ok := methodRoles[full]; !ok || r == roleNone {
				t.Errorf("methodRoles[%q] missing: every served method needs a role", full)
			}
		}
	}
	for m := range methodRoles {
		if !served[m] {
			t.Errorf("methodRoles names %q, which no registered service has", m)
		}
	}
	if len(served) < 20 {
		t.Errorf("only %d methods registered; the walk found too little to prove anything", len(served))
	}
}

func tlsPeer(c *x509.Certificate) *peer.Peer {
	st := tls.ConnectionState{}
	if c != nil {
		st.PeerCertificates = []*x509.Certificate{c}
		st.VerifiedChains = [][]*x509.Certificate{{c}}
	}
	return &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}}
}

func TestPeerIdentity(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://example.org/scheduler")
	sneaky, _ := url.Parse("cn:admin")
	tests := []struct {
		name      string
		p         *peer.Peer
		wantName  string
		wantMatch []string
	}{
		{"unix peer", &peer.Peer{AuthInfo: peerCred{UID: 1000, GID: 100, Groups: []uint32{100, 27}}}, "uid:1000", []string{"uid:1000", "gid:100", "gid:27"}},
		{"URI SAN first", tlsPeer(&x509.Certificate{URIs: []*url.URL{spiffe}, DNSNames: []string{"a"}, Subject: pkix.Name{CommonName: "c"}}), "spiffe://example.org/scheduler", nil},
		{"DNS SAN next", tlsPeer(&x509.Certificate{DNSNames: []string{"node-1.example.org", "b"}, Subject: pkix.Name{CommonName: "c"}}), "dns:node-1.example.org", nil},
		{"CN last", tlsPeer(&x509.Certificate{Subject: pkix.Name{CommonName: "scheduler"}}), "cn:scheduler", nil},
		{"no name", tlsPeer(&x509.Certificate{}), "", nil},
		{"URI spelled like another form", tlsPeer(&x509.Certificate{URIs: []*url.URL{sneaky}}), "", nil},
		{"no certificate", tlsPeer(nil), "anonymous", nil},
		{"unverified certificate", &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "x"}}}}}}, "", nil},
		{"no credentials", &peer.Peer{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := peerIdentity(tt.p)
			if id.name != tt.wantName {
				t.Errorf("peerIdentity() = %q, want %q", id.name, tt.wantName)
			}
			want := tt.wantMatch
			if want == nil && tt.wantName != "" {
				want = []string{tt.wantName}
			}
			if strings.Join(id.match, ",") != strings.Join(want, ",") {
				t.Errorf("peerIdentity().match = %q, want %q", id.match, want)
			}
		})
	}
}

func TestRoleTable(t *testing.T) {
	rt := newRoleTable([]config.RoleBinding{{Identity: "uid:0", Role: "admin"}, {Identity: "gid:27", Role: "viewer"}, {Identity: "uid:1000", Role: "submitter"}})
	tests := []struct {
		match []string
		want  role
	}{
		{[]string{"uid:0", "gid:0"}, roleAdmin},
		{[]string{"uid:1000", "gid:27"}, roleSubmitter},
		{[]string{"uid:1001", "gid:1001", "gid:27"}, roleViewer},
		{[]string{"uid:1001", "gid:1001"}, roleNone},
		{nil, roleNone},
	}
	for _, tt := range tests {
		if got := rt.of(identity{match: tt.match}); got != tt.want {
			t.Errorf("of(%q) = %v, want %v", tt.match, got, tt.want)
		}
	}
}

func TestPermissionDeniedNamesRole(t *testing.T) {
	err := permissionDenied("/pcnode.v1.NodeService/DrainNode", roleAdmin, caller{id: identity{name: "uid:1000"}, role: roleSubmitter})
	st := status.Convert(err)
	if st.Code() != codes.PermissionDenied || st.Message() != "NodeService/DrainNode needs role admin; identity uid:1000 has role submitter" {
		t.Errorf("permissionDenied = %v %q, want PERMISSION_DENIED naming admin and the caller's role", st.Code(), st.Message())
	}
	if len(st.Details()) != 1 {
		t.Errorf("details = %v, want one ErrorInfo", st.Details())
	}
	err = permissionDenied("/pcnode.v1.TaskService/GetTask", roleViewer, caller{id: identity{name: "uid:1001"}})
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "needs role viewer; identity uid:1001 has no role") {
		t.Errorf("unmapped caller's message = %q", msg)
	}
}
