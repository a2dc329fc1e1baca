package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// start creates and starts the container; RUNNING.
func (r *runner) start(task *pcnodev1.Task) (*pcnodev1.Task, error) {
	d := r.d
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	if err := d.ownOutputs(ctx, task); err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	cs, err := d.containerSpec(task, r.alloc)
	if err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	// The mount sources are staging mounts of the directories prepare
	// opened; once the container has started (or failed to) it holds
	// mounts of its own and the staging ones go.
	defer d.unstage(r.id)
	if cs.Mounts, err = d.stageChannels(task); err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	started, err := d.rt.Start(ctx, cs)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while starting: %v", d.startupTimeout(task), err)
		}
		if errors.Is(err, runtime.ErrImageNotFound) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err)
		}
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "starting the container: %v", err)
	}
	task, err = d.update(context.WithoutCancel(ctx), r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_RUNNING
		t.StartTime = timestamppb.Now()
		if started.ImageDigest != "" {
			t.ImageDigest = started.ImageDigest
		}
	})
	if err != nil {
		return task, err
	}
	r.log.Info("task running", "image", task.GetSpec().GetImage(), "digest", task.GetImageDigest(), "pid", started.PID)
	return task, nil
}

// containerSpec builds the container for a resolved task, without its
// mounts: start adds those (stageChannels).
func (d *Daemon) containerSpec(task *pcnodev1.Task, a sched.Assignment) (runtime.ContainerSpec, error) {
	s, inst := task.GetSpec(), task.GetInstance()
	logURI, err := runtime.BinaryLogURI(d.exe, logs.BinaryIOArgs(logs.DriverConfig{
		Dir:          d.taskLogDir(task.GetId()),
		MaxFileBytes: d.cfg.Logs.MaxFileSize.Bytes(),
		MaxFiles:     d.cfg.Logs.MaxFiles,
	}))
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	cs := runtime.ContainerSpec{
		ID:                     task.GetId(),
		Image:                  s.GetImage(),
		Args:                   inst.GetCommand(),
		MemoryLimitBytes:       inst.GetResources().GetLimits().GetMemoryBytes(),
		MemoryReservationBytes: inst.GetResources().GetRequests().GetMemoryBytes(),
		CPUQuotaMillis:         inst.GetResources().GetLimits().GetCpuMillis(),
		PidsLimit:              s.GetPidsLimit(),
		NetworkHost:            s.GetNetwork() == pcnodev1.NetworkMode_NETWORK_MODE_HOST,
		ReadOnlyRootfs:         s.GetReadOnlyRootfs(),
		User:                   d.taskUser(s),
		LogURI:                 logURI,
	}
	if cs.PidsLimit == 0 {
		cs.PidsLimit = d.cfg.Tasks.PidsLimit
	}
	if cs.CPUQuotaMillis > 0 && cs.CPUQuotaMillis < 10 {
		cs.CPUQuotaMillis = 10
	}
	for _, e := range inst.GetEnv() {
		if e.GetName() == "NVIDIA_VISIBLE_DEVICES" {
			continue // set below from the allocation only
		}
		v := e.GetValue()
		if name := e.GetSecret(); name != "" {
			// Read now, not at submit: a replaced file is a rotation. The
			// value goes to the container's spec only, never to the task
			// record or a log line.
			if v, err = d.secrets.Read(name); err != nil {
				return runtime.ContainerSpec{}, fmt.Errorf("environment variable %s: %w", e.GetName(), err)
			}
		}
		cs.Env = append(cs.Env, e.GetName()+"="+v)
	}
	uuids := a.UUIDs()
	if len(uuids) > 0 {
		cs.Env = append(cs.Env, "NVIDIA_VISIBLE_DEVICES="+strings.Join(uuids, ","))
		for _, u := range uuids {
			cs.CDIDevices = append(cs.CDIDevices, "nvidia.com/gpu="+u)
		}
	} else {
		cs.Env = append(cs.Env, "NVIDIA_VISIBLE_DEVICES=void")
	}
	// Mounts are added by start from the staging mounts of the directories
	// prepare opened (stageChannels), never from the instance's paths.
	return cs, nil
}
