package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// resolution is what submit and ResolveTask learn about a spec.
type resolution struct {
	instance *pcnodev1.TaskInstance // nil when the image is not on the node yet
	warnings []string
	request  sched.Request
}

// resolve checks a spec as far as the node allows now: field shapes, host
// paths, and — when the image is on the node or the template is inline —
// the template, channels, env and scale rules. Every problem is returned as
// an invalidError.
func (d *Daemon) resolve(ctx context.Context, s *pcnodev1.TaskSpec) (*resolution, error) {
	if p := validateSpecFields(s, d.cfg.Tasks.AllowHostNetwork, d.cfg.Limits); len(p) > 0 {
		return nil, invalid(p)
	}
	if err := d.checkSecrets(ctx, s); err != nil {
		return nil, err
	}
	t, err := d.specTask(s)
	if err != nil {
		return nil, err
	}
	if err := nodeLimits(d.cfg.Limits).Validate(t).Err(); err != nil {
		return nil, specInvalid(err, "spec.")
	}
	res := &resolution{}
	img, err := d.rt.GetImage(ctx, s.GetImage())
	switch {
	case errors.Is(err, runtime.ErrInvalidReference):
		var p problems
		p.add("spec.image", "%v", err)
		return nil, invalid(p)
	case err != nil && !errors.Is(err, runtime.ErrImageNotFound):
		return nil, err
	case err == nil || s.GetInlineTemplate() != nil:
		img.Name = s.GetImage()
		res.instance, res.warnings, err = d.resolveWithImage(ctx, s, img)
		if err != nil {
			if errors.Is(err, errNoProcessingContainer) || errors.Is(err, runtime.ErrNotRegularFile) || errors.Is(err, runtime.ErrFileTooLarge) {
				var p problems
				p.add("spec.image", "%v", err)
				return nil, invalid(p)
			}
			return nil, specInvalid(err, "spec.")
		}
	default: // not on the node, template from the image
		// Pulled when the task starts; the template is checked then.
		res.warnings = append(res.warnings, fmt.Sprintf("image %s is not on the node: it is pulled when the task starts, and the template is checked then", s.GetImage()))
	}
	res.request = d.schedRequest(s, res.instance)
	d.applyDefaultLimits(res.instance, res.request.Requests)
	return res, nil
}

// maxWarnings is the most warnings kept on a task; maxWarningBytes the
// longest one. A processing-container.json with thousands of unknown keys
// must not make every task of its image large.
const (
	maxWarnings     = 16
	maxWarningBytes = 256
)

// boundInstance holds a resolved instance to the node's [limits]
// max_instance_bytes, so that a stored task stays small whatever its image's
// template holds, and keeps at most maxWarnings warnings, clipped.
func (d *Daemon) boundInstance(s *pcnodev1.TaskSpec, inst *pcnodev1.TaskInstance, warnings []string) (*pcnodev1.TaskInstance, []string, error) {
	if n, most := proto.Size(inst), d.cfg.Limits.MaxInstanceBytes.Bytes(); int64(n) > most {
		field := "spec.template_identifier"
		if s.GetInlineTemplate() != nil {
			field = "spec.inline_template"
		}
		var p problems
		p.add(field, "the task it resolves to (the template's env, command and channels merged with the spec's) is %d bytes serialized; at most %d ([limits] max_instance_bytes)", n, most)
		return nil, nil, invalid(p)
	}
	return inst, capWarnings(warnings), nil
}

// capWarnings keeps the first maxWarnings warnings, each clipped to
// maxWarningBytes, and says how many were left out.
func capWarnings(ws []string) []string {
	out := make([]string, 0, min(len(ws), maxWarnings+1))
	for i, w := range ws {
		if i == maxWarnings {
			out = append(out, fmt.Sprintf("... and %d more warnings", len(ws)-maxWarnings))
			break
		}
		if len(w) > maxWarningBytes {
			cut := maxWarningBytes
			for cut > 0 && !utf8.RuneStart(w[cut]) {
				cut--
			}
			w = w[:cut] + "..."
		}
		out = append(out, w)
	}
	return out
}

// schedRequest is what the scheduler reserves for a task: the instance's
// requests (else the spec's), with the node's defaults for what is unset.
func (d *Daemon) schedRequest(s *pcnodev1.TaskSpec, inst *pcnodev1.TaskInstance) sched.Request {
	r := s.GetResources()
	if inst != nil {
		r = inst.GetResources()
	}
	req := sched.Resources{
		MilliCPU:    r.GetRequests().GetCpuMillis(),
		MemoryBytes: r.GetRequests().GetMemoryBytes(),
		GPUs:        int(max(r.GetRequests().GetGpus(), r.GetLimits().GetGpus())),
	}
	// A limit without a request reserves the limit, as Kubernetes does.
	if req.MilliCPU == 0 {
		req.MilliCPU = r.GetLimits().GetCpuMillis()
	}
	if req.MemoryBytes == 0 {
		req.MemoryBytes = r.GetLimits().GetMemoryBytes()
	}
	req = sched.ApplyDefaults(req, sched.Defaults{
		MilliCPU:    d.cfg.Resources.DefaultCPU.Millis(),
		MemoryBytes: d.cfg.Resources.DefaultMemory.Bytes(),
	})
	sel := s.GetResources().GetGpuSelector()
	return sched.Request{
		Priority:          int(s.GetPriority()),
		Requests:          req,
		GPUMinMemoryBytes: sel.GetMinMemoryBytes(),
		GPUModel:          sel.GetModel(),
	}
}

// specHash identifies a spec for idempotency; credentials do not count.
func specHash(s *pcnodev1.TaskSpec) []byte {
	c := proto.Clone(s).(*pcnodev1.TaskSpec)
	c.RegistryAuth = nil
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	h := sha256.Sum256(b)
	return h[:]
}

// submit queues a task (or returns the existing one for a repeated
// idempotency key).
func (d *Daemon) submit(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (*pcnodev1.Task, bool, error) {
	var p problems
	validateIdempotencyKey(&p, "idempotency_key", req.GetIdempotencyKey())
	if len(p) > 0 {
		return nil, false, invalid(p)
	}
	s := req.GetSpec()
	// A repeated key is answered first, before resolution, the fit, the
	// drain and the image are looked at: a retried or re-attaching client
	// (an Airflow worker that died) gets its task back even when the node
	// has since drained, filled up or lost the image. The same key with a
	// different spec is the conflict CreateTask would report.
	c, _ := callerFrom(ctx)
	if key := req.GetIdempotencyKey(); key != "" && s != nil {
		prev, hash, err := d.store.FindIdempotencyKey(ctx, c.id.name, key)
		switch {
		case err == nil && bytes.Equal(hash, specHash(s)):
			return prev, true, nil
		case err == nil:
			return nil, false, fmt.Errorf("idempotency key %q belongs to task %s: %w", key, prev.GetId(), store.ErrKeyConflict)
		case !errors.Is(err, store.ErrNotFound):
			return nil, false, err
		}
	}
	res, err := d.resolve(ctx, s)
	if err != nil {
		return nil, false, err
	}
	if err := d.checkCDI(res.request.Requests.GPUs); err != nil {
		return nil, false, err
	}
	if _, ever, reason := d.sched.Fits(res.request); !ever {
		return nil, false, withCode(codes.ResourceExhausted, errors.New(reason))
	}
	if d.draining.Load() {
		return nil, false, withCode(codes.FailedPrecondition, errors.New("node is draining: not admitting tasks (ResumeNode to admit again)"))
	}
	if d.recovering.Load() {
		// Recovery (Start) re-queues the stored QUEUED tasks; a task stored
		// now would be queued twice.
		return nil, false, withCode(codes.Unavailable, fmt.Errorf("not admitting tasks yet: recovering the last run's tasks once containerd at %s answers", d.cfg.Containerd.Address))
	}
	// The submitter is the identity the caller's connection proved (the
	// auth interceptor's, c above); no request field can name it.
	now := time.Now()
	stored := proto.Clone(s).(*pcnodev1.TaskSpec)
	stored.RegistryAuth = nil
	task := &pcnodev1.Task{
		Id:             store.NewID(now),
		Spec:           stored,
		Instance:       res.instance,
		State:          pcnodev1.TaskState_TASK_STATE_QUEUED,
		Message:        "waiting for resources",
		IdempotencyKey: req.GetIdempotencyKey(),
		CreateTime:     timestamppb.New(now),
		UpdateTime:     timestamppb.New(now),
		Warnings:       res.warnings,
		SubmittedBy:    c.id.name,
	}
	// The store scopes idempotency keys by submitted_by: another
	// identity's key never returns this task.
	got, existing, err := d.store.CreateTask(ctx, task, req.GetIdempotencyKey(), specHash(s))
	if err != nil {
		return nil, false, err
	}
	if existing {
		return got, true, nil
	}
	var auth *runtime.Auth
	if a := s.GetRegistryAuth(); a != nil && (a.GetUsername() != "" || a.GetPassword() != "") {
		auth = &runtime.Auth{Username: a.GetUsername(), Password: a.GetPassword()}
	}
	// Announce QUEUED before the scheduler may start the task, so that
	// watchers see the states in order.
	d.announce(got)
	d.enqueue(ctx, got, res.request, auth)
	d.log.Info("task queued", "task", got.GetId(), "image", s.GetImage(), "name", s.GetName(), "submitted_by", got.GetSubmittedBy())
	return got, false, nil
}

// enqueue hands a stored QUEUED task to the scheduler.
func (d *Daemon) enqueue(ctx context.Context, task *pcnodev1.Task, req sched.Request, auth *runtime.Auth) {
	req.ID = task.GetId()
	req.Submitted = task.GetCreateTime().AsTime()
	d.mu.Lock()
	d.queued[req.ID] = &queuedTask{auth: auth, deadline: d.startupDeadline(task)}
	d.mu.Unlock()
	if err := d.sched.Enqueue(req); err != nil {
		d.mu.Lock()
		delete(d.queued, req.ID)
		d.mu.Unlock()
		d.sealLog(ctx, req.ID)
		d.finish(ctx, req.ID, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_START_ERROR,
			fmt.Sprintf("not admitted: %v", err), nil)
		return
	}
	d.kick()
}

// scheduleLoop starts admitted tasks and expires queued ones whose startup
// deadline passed.
func (d *Daemon) scheduleLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-tick.C:
			d.expireQueued(ctx)
		}
		// Nothing is admitted while containerd is down: queued tasks stay
		// queued, and the health monitor kicks this loop when it is back.
		if !d.ctrd.containerdUp() {
			continue
		}
		for _, a := range d.sched.Schedule() {
			d.launch(a)
		}
	}
}

func (d *Daemon) launch(a sched.Assignment) {
	d.mu.Lock()
	defer d.mu.Unlock()
	qt := d.queued[a.ID]
	delete(d.queued, a.ID)
	if d.closing {
		return
	}
	var auth *runtime.Auth
	if qt != nil {
		auth = qt.auth
	}
	r := d.newRunner(a.ID, a, auth)
	d.runners[a.ID] = r
	go r.run()
}

func (d *Daemon) expireQueued(ctx context.Context) {
	now := time.Now()
	d.mu.Lock()
	var expired []string
	for id, q := range d.queued {
		if !q.deadline.IsZero() && now.After(q.deadline) {
			expired = append(expired, id)
		}
	}
	d.mu.Unlock()
	for _, id := range expired {
		if !d.sched.Remove(id) {
			continue // just admitted; the runner enforces the deadline
		}
		d.mu.Lock()
		delete(d.queued, id)
		d.mu.Unlock()
		d.sealLog(ctx, id) // the task never ran: followers of its log end now
		d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT,
			"startup timeout passed while queued for resources", nil)
	}
}

// cancelTask stops a task: a queued one ends at once, a running one is stopped
// with grace. A finished task is returned unchanged.
func (d *Daemon) cancelTask(ctx context.Context, id string, grace time.Duration) (*pcnodev1.Task, error) {
	for range 50 {
		task, err := d.store.GetTask(ctx, id)
		if err != nil {
			return nil, err
		}
		if isFinal(task.GetState()) {
			return task, nil
		}
		d.mu.Lock()
		r := d.runners[id]
		d.mu.Unlock()
		if r != nil {
			r.requestStop(stopCancel, grace)
			return task, nil
		}
		if d.sched.Remove(id) {
			d.mu.Lock()
			delete(d.queued, id)
			d.mu.Unlock()
			d.sealLog(ctx, id) // the task never ran: followers of its log end now
			return d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled while queued", nil)
		}
		time.Sleep(20 * time.Millisecond) // between admission and runner start
	}
	return nil, fmt.Errorf("task %s: could not be cancelled (no runner and not queued)", id)
}

// checkSecrets refuses a spec naming a secret its caller may not name
// (PERMISSION_DENIED with a violation at spec.env[N].secret: no
// [[secrets.grants]] entry of the caller's covers it; checked first, so that
// a caller learns nothing of secrets it may not use), or one the node cannot
// give: FAILED_PRECONDITION at spec.env[N].secret saying why (no store:
// [secrets] dir is empty; no such file; a file the store refuses). Only the
// name and the store's reason are said, never content.
func (d *Daemon) checkSecrets(ctx context.Context, s *pcnodev1.TaskSpec) error {
	var denied, p problems
	for i, e := range s.GetEnv() {
		if e.GetSecret() == "" {
			continue
		}
		f := fmt.Sprintf("spec.env[%d].secret", i)
		if who, ok := d.secretGranted(ctx, e.GetSecret()); !ok {
			denied.add(f, "secret %q: %s has no [[secrets.grants]] entry for it", e.GetSecret(), who)
			continue
		}
		if d.secrets == nil {
			p.add(f, "secret %q: this node has no secret store ([secrets] dir is empty in its configuration)", e.GetSecret())
			continue
		}
		if err := d.secrets.Check(e.GetSecret()); err != nil {
			p.add(f, "%v", err)
		}
	}
	if len(denied) > 0 {
		sort.SliceStable(denied, func(i, j int) bool { return denied[i].GetField() < denied[j].GetField() })
		return &invalidError{problems: denied, code: codes.PermissionDenied}
	}
	if len(p) > 0 {
		return preconditionFailed(p)
	}
	return nil
}

// secretGranted reports whether the caller of ctx may name secret, and who
// the caller is (for the error). A call that did not come through the API
// (in-process) may; an API caller needs a [[secrets.grants]] entry for one
// of its identities (its name or, on the unix socket, one of its gid:N)
// with a pattern matching the name.
func (d *Daemon) secretGranted(ctx context.Context, secret string) (string, bool) {
	c, ok := callerFrom(ctx)
	if !ok {
		return "", true
	}
	for _, g := range d.cfg.Secrets.Grants {
		if !slices.Contains(c.id.match, g.Identity) {
			continue
		}
		for _, pat := range g.Secrets {
			if m, err := path.Match(pat, secret); err == nil && m {
				return c.id.name, true
			}
		}
	}
	if c.id.name == "" {
		return "an unauthenticated caller", false
	}
	return "identity " + c.id.name, false
}
