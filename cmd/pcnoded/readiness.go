package main

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pcnode/pcnode/daemon"
)

// readinessPoll is how often readiness is looked at besides the daemon's
// change signal (a fallback: every change also signals).
const readinessPoll = time.Second

// readiness reports the daemon's readiness (daemon.Ready) through the gRPC
// health service, for "" and every pcnode.v1 service: SERVING while
// containerd answers and no recovery runs, NOT_SERVING otherwise (Watch
// streams follow); and each change of what it waits for as a systemd
// STATUS= line.
type readiness struct {
	d        *daemon.Daemon
	hs       *health.Server
	services []string
	sd       *sdNotifier
	log      *slog.Logger
	last     string
	lastOK   bool
	started  bool
}

func newReadiness(d *daemon.Daemon, hs *health.Server, info map[string]grpc.ServiceInfo, sd *sdNotifier, log *slog.Logger) *readiness {
	r := &readiness{d: d, hs: hs, sd: sd, log: log, services: []string{""}}
	for name := range info {
		if strings.HasPrefix(name, "pcnode.v1.") {
			r.services = append(r.services, name)
		}
	}
	sort.Strings(r.services)
	return r
}

// why is what the daemon waits for, or "serving".
func (r *readiness) why() string {
	_, why := r.d.Ready()
	return why
}

// set applies the daemon's readiness now.
func (r *readiness) set() {
	ok, why := r.d.Ready()
	if r.started && ok == r.lastOK && why == r.last {
		return
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, s := range r.services {
		r.hs.SetServingStatus(s, st)
	}
	if r.started {
		r.log.Info("readiness changed", "ready", ok, "status", why)
		if err := r.sd.notify(sdStatus(why)); err != nil {
			r.log.Warn("systemd notification", "err", err)
		}
	}
	r.started, r.lastOK, r.last = true, ok, why
}

// follow applies every change until ctx ends.
func (r *readiness) follow(ctx context.Context) {
	t := time.NewTicker(readinessPoll)
	defer t.Stop()
	for {
		r.set()
		select {
		case <-ctx.Done():
			return
		case <-r.d.ReadinessChanged():
		case <-t.C:
		}
	}
}
