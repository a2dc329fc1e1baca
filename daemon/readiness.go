package daemon

import "fmt"

// Ready reports whether the node is ready for work: containerd answers and
// the last run's tasks are recovered (the schedule loop runs). When it is
// not, why says what it waits for. cmd/pcnoded reports it through the gRPC
// health service and systemd's STATUS.
func (d *Daemon) Ready() (ready bool, why string) {
	switch {
	case !d.ctrd.containerdUp():
		return false, fmt.Sprintf("waiting for containerd at %s", d.cfg.Containerd.Address)
	case d.admin.isRecovering():
		return false, "recovering the last run's tasks"
	}
	return true, "serving"
}

// ReadinessChanged is signalled (coalesced, buffer 1) when what Ready
// reports may have changed. It has one reader: cmd/pcnoded's health
// reporter.
func (d *Daemon) ReadinessChanged() <-chan struct{} { return d.readyCh }

// readinessChanged signals ReadinessChanged.
func (d *Daemon) readinessChanged() {
	select {
	case d.readyCh <- struct{}{}:
	default:
	}
}
