package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// create gets everything ready for containerd to create the container:
// the output directories owned by the task's user, the container spec
// (command, environment with secrets read now, limits, GPUs as CDI devices
// from the allocation, the log driver), and staging mounts of the
// directories prepareOutputs opened as its mount sources. The caller
// releases the staging mounts (unstage) once the container has started or
// failed to.
//
// Reads: the task record, the secret store, the opened directories.
// Writes: ownership of the output directories, staging mounts below
// <state>/staging (host). Nothing in the store or in containerd.
//
// Re-run: ownership is set to the same owner again; staging mounts are
// made afresh under the task's group, and a crash leaves them for the
// sweep at the next start (hostpath.Staging.Sweep).
func (r *runner) create(ctx context.Context, task *pcnodev1.Task) (runtime.ContainerSpec, error) {
	d := r.d
	if err := d.ownOutputs(ctx, task); err != nil {
		return runtime.ContainerSpec{}, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	cs, err := d.containerSpec(task, r.alloc)
	if err != nil {
		return runtime.ContainerSpec{}, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	// The mount sources are staging mounts of the directories prepare
	// opened; once the container has started (or failed to) it holds
	// mounts of its own and the staging ones go.
	if cs.Mounts, err = d.stageChannels(task); err != nil {
		return runtime.ContainerSpec{}, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	return cs, nil
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
