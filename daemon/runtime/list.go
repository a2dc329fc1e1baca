package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// State is a container's task state.
type State string

// Container states.
const (
	// StateCreated: the container exists but its task does not, or has
	// not been started.
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	// StateStopped: the task has exited; ContainerInfo.Exit says how.
	StateStopped State = "stopped"
	StateUnknown State = "unknown"
)

// ContainerInfo describes one of pcnode's containers.
type ContainerInfo struct {
	// ID is the container id (the task id it was started with).
	ID string
	// TaskID is the LabelTaskID label.
	TaskID string
	// Image is the image reference the container was created from.
	Image   string
	Labels  map[string]string
	Created time.Time
	State   State
	// PID is the init process while the task exists.
	PID uint32
	// Exit is set when State is StateStopped.
	Exit *ExitStatus
}

// ListContainers returns the containers in c's namespace that carry
// LabelTaskID, with their task's state, so that a restarted daemon can
// re-attach to running tasks (Wait) and finish stopped ones.
func (c *Containerd) ListContainers(ctx context.Context) (_ []ContainerInfo, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	cs, err := c.client.Containers(ctx, fmt.Sprintf("labels.%q", LabelTaskID))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ContainerInfo, 0, len(cs))
	for _, container := range cs {
		info, err := container.Info(ctx)
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", container.ID(), err)
		}
		ci := ContainerInfo{
			ID:      info.ID,
			TaskID:  info.Labels[LabelTaskID],
			Image:   info.Image,
			Labels:  info.Labels,
			Created: info.CreatedAt,
			State:   StateCreated,
		}
		if err := c.fillTaskState(ctx, container, &ci); err != nil {
			return nil, err
		}
		out = append(out, ci)
	}
	return out, nil
}

func (c *Containerd) fillTaskState(ctx context.Context, container client.Container, ci *ContainerInfo) error {
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task of %s: %w", ci.ID, err)
	}
	ci.PID = task.Pid()
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("status of %s: %w", ci.ID, err)
	}
	switch st.Status {
	case client.Created:
		ci.State = StateCreated
	case client.Running:
		ci.State = StateRunning
	case client.Paused, client.Pausing:
		ci.State = StatePaused
	case client.Stopped:
		ci.State = StateStopped
		oom, err := c.oomKilled(ctx, ci.ID)
		if err != nil {
			c.log.WarnContext(ctx, "reading OOM state", "task", ci.ID, "error", err)
		}
		ci.Exit = &ExitStatus{Code: int(st.ExitStatus), ExitedAt: st.ExitTime, OOMKilled: oom}
	default:
		ci.State = StateUnknown
	}
	return nil
}
