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
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// Resolution is what submit and ResolveTask learn about a spec.
type Resolution struct {
	instance *pcnodev1.TaskInstance // nil when the image is not on the node yet
	warnings []string
	request  sched.Request
}

// Instance is the task as the spec resolves it: nil when the image is not
// on the node yet.
func (r *Resolution) Instance() *pcnodev1.TaskInstance { return r.instance }

// Warnings are what resolving the spec warned of: ResolveTask's warnings.
func (r *Resolution) Warnings() []string { return r.warnings }

// resolve checks a spec as far as the node allows now: field shapes, host
// paths, and — when the image is on the node or the template is inline —
// the template, channels, env and scale rules. Every problem is returned as
// an invalidError.
func (d *Daemon) resolve(ctx context.Context, s *pcnodev1.TaskSpec) (*Resolution, error) {
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
	res := &Resolution{}
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

// Submit queues a task (or returns the existing one for a repeated
// idempotency key).
func (d *Daemon) Submit(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (_ *pcnodev1.Task, existing bool, err error) {
	defer func() { d.noteSubmit(existing, err) }() // metrics: new task or refusal
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
			d.reattachAuth(prev, s)
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
		return nil, false, WithCode(codes.ResourceExhausted, errors.New(reason))
	}
	if d.admin.isDraining() {
		return nil, false, WithCode(codes.FailedPrecondition, errors.New("node is draining: not admitting tasks (ResumeNode to admit again)"))
	}
	if d.admin.isRecovering() {
		// Recovery (Start) re-queues the stored QUEUED tasks; a task stored
		// now would be queued twice.
		return nil, false, WithCode(codes.Unavailable, fmt.Errorf("not admitting tasks yet: recovering the last run's tasks once containerd at %s answers", d.cfg.Containerd.Address))
	}
	// Per-spec registry credentials stay in memory (queuedTask.auth) until
	// the image is pulled, and are never written: the stored spec has none,
	// and the task only says that it had some.
	auth := specAuth(s)
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

		RegistryAuthInMemory: auth != nil,
	}
	// The store scopes idempotency keys by submitted_by: another
	// identity's key never returns this task.
	got, existing, err := d.store.CreateTask(ctx, task, req.GetIdempotencyKey(), specHash(s))
	if err != nil {
		return nil, false, err
	}
	if existing {
		d.reattachAuth(got, s)
		return got, true, nil
	}
	// Announce QUEUED before the scheduler may start the task, so that
	// watchers see the states in order.
	d.announce(got)
	d.enqueue(ctx, got, res.request, auth)
	d.log.Info("task queued", "task", got.GetId(), "image", s.GetImage(), "name", s.GetName(), "submitted_by", got.GetSubmittedBy())
	return got, false, nil
}

// specAuth is a spec's registry credentials, nil when it has none.
func specAuth(s *pcnodev1.TaskSpec) *runtime.Auth {
	a := s.GetRegistryAuth()
	if a.GetUsername() == "" && a.GetPassword() == "" {
		return nil
	}
	return &runtime.Auth{Username: a.GetUsername(), Password: a.GetPassword()}
}

// reattachAuth gives a queued task whose submit credentials a daemon
// restart lost the credentials of a retried submit of it (same idempotency
// key, same spec): the pull can then use them after all.
func (d *Daemon) reattachAuth(task *pcnodev1.Task, s *pcnodev1.TaskSpec) {
	auth := specAuth(s)
	if auth == nil || !task.GetRegistryAuthInMemory() {
		return
	}
	if d.taskTable.giveAuth(task.GetId(), auth) {
		d.log.Info("registry credentials of a retried submit given to the queued task that had lost them", "task", task.GetId())
	}
}

// authLostWarning is the warning a task gets when the daemon restarted
// while it held the task's per-spec registry credentials in memory.
const authLostWarning = "registry credentials lost in daemon restart: those given at submit are kept in memory only, never stored; " +
	"the image is pulled with the node's configured credentials, or anonymously, if it is not on the node"

// enqueue hands a stored QUEUED task to the scheduler, with the registry
// credentials of its submit (nil after a restart: they were never stored,
// and the task is told so when it had some).
func (d *Daemon) enqueue(ctx context.Context, task *pcnodev1.Task, req sched.Request, auth *runtime.Auth) {
	req.ID = task.GetId()
	req.Submitted = task.GetCreateTime().AsTime()
	if auth == nil && task.GetRegistryAuthInMemory() && !slices.Contains(task.GetWarnings(), authLostWarning) {
		if _, err := d.update(ctx, req.ID, func(t *pcnodev1.Task) { t.Warnings = append(t.Warnings, authLostWarning) }); err != nil {
			d.log.Warn("recording lost registry credentials", "task", req.ID, "err", err)
		}
	}
	qt := &queuedTask{auth: auth, deadline: d.startupDeadline(task)}
	d.taskTable.addQueued(req.ID, qt)
	if err := d.sched.Enqueue(req); err != nil {
		d.taskTable.dropQueued(req.ID)
		d.sealLog(ctx, req.ID)
		d.finish(ctx, req.ID, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_START_ERROR,
			fmt.Sprintf("not admitted: %v", err), nil)
		return
	}
	// A cancel that came before the scheduler had it was recorded (cancelTask).
	if d.taskTable.dropIfCancelled(req.ID, qt, d.sched.Remove) {
		d.sealLog(ctx, req.ID)
		d.finish(ctx, req.ID, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled while queued", nil)
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

// launch starts the runner of a task the scheduler admitted, in one step
// with taking it off the queued tasks (taskTable.admit).
func (d *Daemon) launch(a sched.Assignment) {
	d.taskTable.admit(a.ID, func(qt *queuedTask) *runner {
		var auth *runtime.Auth
		if qt != nil {
			auth = qt.auth
		}
		r := d.newRunner(a.ID, a, auth)
		if qt != nil && qt.cancelled { // cancelled between admission and now (cancelTask)
			r.requestStop(stopCancel, 0)
			go r.endBeforeStart()
			return r
		}
		go r.run()
		return r
	})
}

func (d *Daemon) expireQueued(ctx context.Context) {
	for _, id := range d.taskTable.expiredQueued(time.Now()) {
		if !d.sched.Remove(id) {
			continue // just admitted; the runner enforces the deadline
		}
		d.taskTable.dropQueued(id)
		d.sealLog(ctx, id) // the task never ran: followers of its log end now
		d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT,
			"startup timeout passed while queued for resources", nil)
	}
}

// cancelTask stops a task and returns it as it is then, never waiting for
// the container:
//   - a queued task ends CANCELLED at once;
//   - one the scheduler has just admitted, before its runner started, has
//     the cancel recorded (queuedTask.cancelled): launch ends it CANCELLED
//     before anything starts;
//   - a preparing or running one is asked to stop (runner.requestStop):
//     SIGTERM, then SIGKILL after its grace. The first cancel's grace is
//     requested's, else the spec's or the node's (gracePeriod). A later
//     cancel escalates: its grace (none or 0: SIGKILL now) replaces what is
//     left of the grace in force when it is shorter.
//
// The task's message says what was done ("stopping: SIGTERM sent, SIGKILL
// in 30s", "escalated: SIGKILL sent"). A finished task is returned
// unchanged. A task this daemon has not taken up (it is starting or
// recovering) is UNAVAILABLE, to be retried.
//
// The stop request (reason, grace in force, SIGKILL time) is written to the
// task record (Task.stop_request) before CancelTask answers, for a running
// or preparing task and for one admitted just now: a daemon restarted
// before the task ended takes it up again (recover.go): a task that had not
// started ends CANCELLED; a running one is stopped again with what is left
// of its grace. So a cancel the daemon answered is never lost, not to a
// crash nor to a shutdown (Close, which detaches runners, and launch, which
// starts no runner once the daemon is closing) between the answer and the
// task's end.
func (d *Daemon) cancelTask(ctx context.Context, id string, requested *durationpb.Duration) (*pcnodev1.Task, error) {
	task, err := d.store.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if IsFinal(task.GetState()) {
		return task, nil
	}
	// A runner that hands its task back to the queue (containerd went
	// away before the start: requeue) refuses stop requests from then on
	// and moves the task to d.queued: look again, a few times.
	for try := 0; ; try++ {
		// One look under d.mu: launch moves a task from queued to runners
		// under it, so the task is found in exactly one of the three places
		// (or none: it ended, or is not taken up yet).
		d.mu.Lock()
		r := d.runners[id]
		qt := d.queued[id]
		removed := r == nil && d.sched.Remove(id)
		switch {
		case removed:
			delete(d.queued, id)
		case r == nil && qt != nil:
			qt.cancelled = true
		}
		d.mu.Unlock()
		switch {
		case r != nil:
			grace := d.gracePeriod(task, requested)
			if why, _ := r.stopRequest(); why != stopNone {
				grace = requested.AsDuration() // escalation: none is 0, SIGKILL now
			}
			out := r.requestStop(stopCancel, grace)
			if out.gone {
				if try < 100 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				return nil, WithCode(codes.Unavailable, fmt.Errorf("task %s is going back to the queue (containerd unreachable): try again", id))
			}
			return r.persistStop(ctx, func(state pcnodev1.TaskState) string { return stopMessage(out, state) })
		case removed:
			d.sealLog(ctx, id) // the task never ran: followers of its log end now
			return d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled while queued", nil)
		case qt != nil:
			// Recorded too: should the daemon close before launch ends the
			// task, the next start ends it CANCELLED.
			now := time.Now()
			return d.update(ctx, id, func(t *pcnodev1.Task) {
				if IsFinal(t.GetState()) {
					return
				}
				t.Message = "cancelling: admitted just now; it ends CANCELLED before its container starts"
				if t.StopRequest == nil {
					t.StopRequest = &pcnodev1.StopRequest{Reason: pcnodev1.TaskReason_TASK_REASON_CANCELLED,
						RequestTime: timestamppb.New(now), GracePeriod: durationpb.New(0), KillTime: timestamppb.New(now)}
				}
			})
		}
		break
	}
	// A runner writes the final state before it lets go of the task:
	// read again.
	task, err = d.store.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if IsFinal(task.GetState()) {
		return task, nil
	}
	return nil, WithCode(codes.Unavailable, fmt.Errorf("task %s is %s but not yet taken up by this daemon (it is starting or recovering tasks): try again", id, task.GetState()))
}

// stopMessage says what a stop request did to a task in state.
func stopMessage(out stopOutcome, state pcnodev1.TaskState) string {
	prefix := "stopping"
	if out.why == stopTimeout {
		prefix = "stopping (execution timeout)"
	}
	switch {
	case state != pcnodev1.TaskState_TASK_STATE_RUNNING:
		return prefix + ": cancelled while preparing; preparation is interrupted"
	case out.escalated && out.left == 0:
		return "escalated: SIGKILL sent"
	case out.escalated:
		return fmt.Sprintf("escalated: SIGTERM sent again, SIGKILL in %s", roundGrace(out.left))
	case out.first && out.left == 0:
		return prefix + ": SIGTERM sent, SIGKILL now (grace 0s)"
	case out.first:
		return fmt.Sprintf("%s: SIGTERM sent, SIGKILL in %s", prefix, roundGrace(out.left))
	}
	return fmt.Sprintf("%s: already requested, SIGKILL in %s (a longer grace does not extend a stop)", prefix, roundGrace(out.left))
}

// roundGrace rounds a duration for a message: whole seconds from 1s up.
func roundGrace(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// endBeforeStart ends a runner whose task was cancelled after the scheduler
// admitted it but before it started: CANCELLED, nothing prepared or
// started.
func (r *runner) endBeforeStart() {
	defer r.release()
	r.fail(nil, errors.New("cancelled before it started"))
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
