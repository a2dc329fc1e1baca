package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// role is what a caller may do; each role includes the ones below it.
type role int

const (
	roleNone role = iota
	roleViewer
	roleSubmitter
	roleAdmin
)

func (r role) String() string {
	switch r {
	case roleViewer:
		return "viewer"
	case roleSubmitter:
		return "submitter"
	case roleAdmin:
		return "admin"
	}
	return "none"
}

func parseRole(s string) role {
	switch s {
	case "viewer":
		return roleViewer
	case "submitter":
		return roleSubmitter
	case "admin":
		return roleAdmin
	}
	return roleNone
}

// methodRoles is the access table: the role each method of every service
// the daemon serves needs. A method missing here is refused to everyone
// (TestMethodRolesCoverEveryMethod keeps it complete). Methods that need
// more than viewer change something and are audited. Submitters may
// cancel and delete only tasks they submitted (ownTask).
var methodRoles = map[string]role{
	pcnodev1.TaskService_SubmitTask_FullMethodName:     roleSubmitter,
	pcnodev1.TaskService_RunTask_FullMethodName:        roleSubmitter,
	pcnodev1.TaskService_SubmitTasks_FullMethodName:    roleSubmitter,
	pcnodev1.TaskService_CancelTask_FullMethodName:     roleSubmitter,
	pcnodev1.TaskService_DeleteTask_FullMethodName:     roleSubmitter,
	pcnodev1.TaskService_GetTask_FullMethodName:        roleViewer,
	pcnodev1.TaskService_ListTasks_FullMethodName:      roleViewer,
	pcnodev1.TaskService_WatchTasks_FullMethodName:     roleViewer,
	pcnodev1.TaskService_StreamLogs_FullMethodName:     roleViewer,
	pcnodev1.TaskService_GetTaskOutputs_FullMethodName: roleViewer,
	pcnodev1.TaskService_ResolveTask_FullMethodName:    roleViewer,

	pcnodev1.NodeService_GetNode_FullMethodName:        roleViewer,
	pcnodev1.NodeService_WatchNode_FullMethodName:      roleViewer,
	pcnodev1.NodeService_DrainNode_FullMethodName:      roleAdmin,
	pcnodev1.NodeService_ResumeNode_FullMethodName:     roleAdmin,
	pcnodev1.NodeService_ClearGpuHealth_FullMethodName: roleAdmin,

	pcnodev1.ImageService_PullImage_FullMethodName:              roleSubmitter,
	pcnodev1.ImageService_ImportImage_FullMethodName:            roleSubmitter,
	pcnodev1.ImageService_ListImages_FullMethodName:             roleViewer,
	pcnodev1.ImageService_RemoveImage_FullMethodName:            roleAdmin,
	pcnodev1.ImageService_GetProcessingContainer_FullMethodName: roleViewer,

	healthpb.Health_Check_FullMethodName: roleViewer,
	healthpb.Health_List_FullMethodName:  roleViewer,
	healthpb.Health_Watch_FullMethodName: roleViewer,

	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      roleViewer,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: roleViewer,
}

// identity is who a caller is, as its connection proved it.
type identity struct {
	// name is the identity recorded on tasks (submitted_by), keyed by the
	// stream caps and written to the log: "uid:N", a certificate's URI
	// SAN, "dns:NAME", "cn:NAME" or "anonymous". Empty: unauthenticated.
	name string
	// match are the [[api.roles]] identities that apply: the name, and a
	// unix peer's "gid:N" for its primary and supplementary groups.
	match []string
}

// peerIdentity is the identity a connection's credentials prove: the
// SO_PEERCRED uid and groups on the unix socket; over TLS, the verified
// client certificate's first URI SAN, else its first DNS SAN, else its CN,
// or "anonymous" for a client without a certificate. Anything else
// (including a certificate that names none of these) is no identity.
func peerIdentity(p *peer.Peer) identity {
	switch ai := p.AuthInfo.(type) {
	case peerCred:
		id := identity{name: "uid:" + strconv.FormatUint(uint64(ai.UID), 10)}
		id.match = append(id.match, id.name, "gid:"+strconv.FormatUint(uint64(ai.GID), 10))
		for _, g := range ai.Groups {
			if s := "gid:" + strconv.FormatUint(uint64(g), 10); !slices.Contains(id.match, s) {
				id.match = append(id.match, s)
			}
		}
		return id
	case credentials.TLSInfo:
		if len(ai.State.PeerCertificates) == 0 {
			return identity{name: config.AnonymousIdentity, match: []string{config.AnonymousIdentity}}
		}
		if len(ai.State.VerifiedChains) == 0 {
			return identity{} // never true after the handshake; do not trust it
		}
		if name := certIdentity(ai.State.PeerCertificates[0]); name != "" {
			return identity{name: name, match: []string{name}}
		}
	}
	return identity{}
}

// certIdentity is a client certificate's identity: its first URI SAN (a
// SPIFFE ID), else "dns:" and its first DNS SAN, else "cn:" and its subject
// CN. A URI whose scheme would read as one of the other forms ("uid:",
// "dns:", …), or an identity the config could not name, is none.
func certIdentity(c *x509.Certificate) string {
	var name string
	switch {
	case len(c.URIs) > 0:
		name = c.URIs[0].String()
		if s := strings.ToLower(c.URIs[0].Scheme); s == "uid" || s == "gid" || s == "dns" || s == "cn" {
			return ""
		}
	case len(c.DNSNames) > 0:
		name = "dns:" + c.DNSNames[0]
	case c.Subject.CommonName != "":
		name = "cn:" + c.Subject.CommonName
	default:
		return ""
	}
	if config.ValidIdentity(name) != nil || name == config.AnonymousIdentity {
		return ""
	}
	return name
}

// roleTable is [[api.roles]]: the role of each configured identity.
type roleTable map[string]role

func newRoleTable(bindings []config.RoleBinding) roleTable {
	t := roleTable{}
	for _, b := range bindings {
		t[b.Identity] = max(t[b.Identity], parseRole(b.Role))
	}
	return t
}

// of is the highest role any of id's match identities has.
func (t roleTable) of(id identity) role {
	r := roleNone
	for _, m := range id.match {
		r = max(r, t[m])
	}
	return r
}

// caller is the authenticated caller of the current call.
type caller struct {
	id   identity
	role role
}

type callerKey struct{}

// callerFrom returns the caller the auth interceptor attached to ctx; ok
// is false for a call that did not come through the API (in-process use).
func callerFrom(ctx context.Context) (c caller, ok bool) {
	c, ok = ctx.Value(callerKey{}).(caller)
	return c, ok
}

// authenticate finds the caller of ctx and checks it may call method.
func (d *Daemon) authenticate(ctx context.Context, method string) (caller, error) {
	var c caller
	if p, ok := peer.FromContext(ctx); ok {
		c.id = peerIdentity(p)
		c.role = d.roles.of(c.id)
	}
	need, known := methodRoles[method]
	if !known {
		d.log.Warn("api call refused: method not in the access table", "method", method, "identity", c.id.name)
		return c, status.Errorf(codes.PermissionDenied, "%s is not in the daemon's access table", method)
	}
	if c.role < need {
		d.log.Warn("api call refused", "method", method, "identity", c.id.name, "role", c.role.String(), "need", need.String())
		return c, permissionDenied(method, need, c)
	}
	return c, nil
}

// permissionDenied is PERMISSION_DENIED for a caller below need, naming the
// role needed, with an ErrorInfo (reason ROLE_REQUIRED) that says it again.
func permissionDenied(method string, need role, c caller) error {
	who := "an unauthenticated caller has no role"
	switch {
	case c.id.name != "" && c.role == roleNone:
		who = fmt.Sprintf("identity %s has no role (bind it in [[api.roles]])", c.id.name)
	case c.id.name != "":
		who = fmt.Sprintf("identity %s has role %s", c.id.name, c.role)
	}
	st := status.New(codes.PermissionDenied, fmt.Sprintf("%s needs role %s; %s", shortMethod(method), need, who))
	if ds, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: "ROLE_REQUIRED", Domain: "pcnode.v1",
		Metadata: map[string]string{"required_role": need.String(), "role": c.role.String(), "identity": c.id.name},
	}); err == nil {
		st = ds
	}
	return st.Err()
}

// shortMethod is "TaskService/SubmitTask" for "/pcnode.v1.TaskService/SubmitTask".
func shortMethod(full string) string {
	s := strings.TrimPrefix(full, "/")
	if svc, m, ok := strings.Cut(s, "/"); ok {
		if i := strings.LastIndexByte(svc, '.'); i >= 0 {
			svc = svc[i+1:]
		}
		return svc + "/" + m
	}
	return s
}

// authUnary is the outermost unary interceptor: it authenticates the
// caller, checks its role against methodRoles, attaches it to the context
// and audits mutating calls.
func (d *Daemon) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c, err := d.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	resp, err := h(context.WithValue(ctx, callerKey{}, c), req)
	if methodRoles[info.FullMethod] > roleViewer {
		d.audit(info.FullMethod, c, err, auditAttrs(req, resp)...)
	}
	return resp, err
}

// authStream is authUnary for streams; it runs before the stream caps, so
// that a refused caller takes no stream slot.
func (d *Daemon) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	c, err := d.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	as := &authedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, c)}
	err = h(srv, as)
	if methodRoles[info.FullMethod] > roleViewer {
		var attrs []any
		if as.task != "" {
			attrs = append(attrs, "task", as.task)
		}
		if as.image != "" {
			attrs = append(attrs, "image", as.image)
		}
		d.audit(info.FullMethod, c, err, attrs...)
	}
	return err
}

// authedStream carries the caller in its context and notes the task or
// image a mutating stream acted on, for the audit line.
type authedStream struct {
	grpc.ServerStream
	ctx         context.Context
	task, image string
}

func (s *authedStream) Context() context.Context { return s.ctx }

func (s *authedStream) SendMsg(m any) error {
	if s.task == "" {
		if r, ok := m.(*pcnodev1.RunTaskResponse); ok {
			s.task = r.GetEvent().GetTaskId()
		}
	}
	return s.ServerStream.SendMsg(m)
}

func (s *authedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil && s.image == "" {
		if r, ok := m.(*pcnodev1.PullImageRequest); ok {
			s.image = r.GetReference()
		}
	}
	return err
}

// auditAttrs names the task or image a unary call acted on.
func auditAttrs(req, resp any) []any {
	var attrs []any
	if r, ok := req.(interface{ GetTaskId() string }); ok && r.GetTaskId() != "" {
		attrs = append(attrs, "task", r.GetTaskId())
	} else if r, ok := resp.(interface{ GetTask() *pcnodev1.Task }); ok && r.GetTask().GetId() != "" {
		attrs = append(attrs, "task", r.GetTask().GetId())
	}
	if r, ok := req.(interface{ GetReference() string }); ok && r.GetReference() != "" {
		attrs = append(attrs, "image", r.GetReference())
	}
	if r, ok := req.(interface{ GetUuid() string }); ok && r.GetUuid() != "" {
		attrs = append(attrs, "gpu", r.GetUuid())
	}
	return attrs
}

// audit logs one mutating call: method, identity, role, result code.
func (d *Daemon) audit(method string, c caller, err error, attrs ...any) {
	code := status.Code(err)
	level := slog.LevelInfo
	if code != codes.OK {
		level = slog.LevelWarn
	}
	d.log.Log(context.Background(), level, "api call", append([]any{
		"method", method, "identity", c.id.name, "role", c.role.String(), "code", code.String(),
	}, attrs...)...)
}

// ownTask refuses a caller below admin acting (what: "cancel", "delete") on
// a task another identity submitted, with PERMISSION_DENIED naming admin.
func ownTask(ctx context.Context, t *pcnodev1.Task, what string) error {
	c, ok := callerFrom(ctx)
	if !ok || c.role >= roleAdmin {
		// Admins act on every task. A call without a caller never came
		// through the API (in-process use, unit tests).
		return nil
	}
	if c.id.name != "" && t.GetSubmittedBy() == c.id.name {
		return nil
	}
	st := status.New(codes.PermissionDenied, fmt.Sprintf("task %s was submitted by another identity: to %s it needs role admin; identity %s has role %s and may %s only its own tasks",
		t.GetId(), what, c.id.name, c.role, what))
	if ds, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason: "ROLE_REQUIRED", Domain: "pcnode.v1",
		Metadata: map[string]string{"required_role": roleAdmin.String(), "role": c.role.String(), "identity": c.id.name},
	}); err == nil {
		st = ds
	}
	return st.Err()
}
