package daemon

import (
	"context"
	"fmt"
	"os"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// taskUser is the user a task's container runs as: the spec's, else the
// node's tasks.default_user, else "" (the image's user).
func (d *Daemon) taskUser(s *pcnodev1.TaskSpec) string {
	if u := s.GetUser(); u != "" {
		return u
	}
	return d.cfg.Tasks.DefaultUser
}

// ownOutputs gives each output channel directory of a task that runs as the
// node's tasks.default_user to that user, so that the task can write its
// outputs there (the daemon creates them as root, mode 0755). Only the
// directory itself changes owner; a task whose spec names its own user is
// left as it is, so that no caller can give host directories to a uid of
// its choosing.
func (d *Daemon) ownOutputs(ctx context.Context, task *pcnodev1.Task) error {
	if task.GetSpec().GetUser() != "" || d.cfg.Tasks.DefaultUser == "" {
		return nil
	}
	uid, gid, err := config.ParseUser(d.cfg.Tasks.DefaultUser)
	if err != nil {
		return fmt.Errorf("tasks.default_user: %w", err)
	}
	for i, m := range task.GetInstance().GetOutputs() {
		// The directory prepare opened and emptied, re-opened without
		// following symlinks and changed through its descriptor.
		err := d.withOutputRoot(task, i, func(dir *hostpath.Dir, root *os.Root) error {
			return outputs.ChownRoot(root, dir.Path(), int(uid), int(gid))
		})
		if err != nil {
			return fmt.Errorf("output channel %q: giving it to tasks.default_user %s: %w", m.GetName(), d.cfg.Tasks.DefaultUser, err)
		}
	}
	return nil
}
