package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/metrics"
	"github.com/pcnode/pcnode/daemon/server"
)

type serveFlags struct {
	configPath  string
	socket      string
	stateDir    string
	containerd  string
	namespace   string
	dataRoots   []string
	logLevel    string
	logFormat   string
	gpuBackend  string
	maxParallel int
}

func newRootCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:           "pcnoded",
		Short:         "pcnode node daemon: runs processing-container tasks through containerd",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", config.DefaultPath, "configuration file (TOML); defaults apply when the default path does not exist")
	fl.StringVar(&f.socket, "socket", "", "API socket (overrides api.socket)")
	fl.StringVar(&f.stateDir, "state-dir", "", "state directory (overrides node.state_dir)")
	fl.StringVar(&f.containerd, "containerd", "", "containerd socket (overrides containerd.address)")
	fl.StringVar(&f.namespace, "namespace", "", "containerd namespace (overrides containerd.namespace)")
	fl.StringSliceVar(&f.dataRoots, "data-root", nil, "data root for task channels, repeatable (replaces paths.data_roots)")
	fl.StringVar(&f.gpuBackend, "gpu-backend", "", "GPU backend: auto, nvml, static, none (overrides gpu.backend)")
	fl.IntVar(&f.maxParallel, "max-concurrent", -1, "most tasks running at once, 0 = no cap (overrides resources.max_concurrent)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.AddCommand(newConfigCmd(), newLogDriverCmd())
	return cmd
}

func loadConfig(cmd *cobra.Command, f *serveFlags) (config.Config, error) {
	cfg, err := config.Load(f.configPath)
	if errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config") {
		cfg, err = config.DefaultConfig(), nil
	}
	if err != nil {
		return cfg, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.API.Socket, f.socket)
	set(&cfg.Node.StateDir, f.stateDir)
	set(&cfg.Containerd.Address, f.containerd)
	set(&cfg.Containerd.Namespace, f.namespace)
	set(&cfg.GPU.Backend, f.gpuBackend)
	if f.dataRoots != nil {
		cfg.Paths.DataRoots = f.dataRoots
	}
	if f.maxParallel >= 0 {
		cfg.Resources.MaxConcurrent = f.maxParallel
	}
	return cfg, cfg.Validate()
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json, got %q", format)
}

func serve(cmd *cobra.Command, f *serveFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cmd, f)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sd, err := newSDNotifier(os.Getenv)
	if err != nil {
		log.Warn("systemd notifications off", "err", err)
	}
	os.Unsetenv("NOTIFY_SOCKET") // for no process of ours to inherit
	if err := sd.notify(sdStatus("starting: opening the state and connecting to containerd")); err != nil {
		log.Warn("systemd notification", "err", err)
	}

	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()

	lis, err := listenUnix(cfg.API.Socket, cfg.API.SocketGroup)
	if err != nil {
		return err
	}
	tcp, err := d.ListenTCP()
	if err != nil {
		lis.Close()
		return err
	}
	// The metrics interceptors come first: calls that authentication
	// refuses are counted too.
	m := d.Metrics()
	srv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	}, d.ServerOptions()...)...)
	server.Register(srv, d)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	m.InitGRPC(srv.GetServiceInfo())
	ready := newReadiness(d, hs, srv.GetServiceInfo(), sd, log)
	ready.set() // NOT_SERVING until containerd answers and recovery is done

	errc := make(chan error, 3)
	var ms *metrics.Server
	metricsAddr := ""
	if cfg.Metrics.Enabled() {
		if ms, err = metrics.Listen(cfg.Metrics, m, log.With("component", "metrics")); err != nil {
			lis.Close()
			if tcp != nil {
				tcp.Close()
			}
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ms.Shutdown(sctx)
		}()
		// Served from now on: a scrape during recovery sees the node
		// recovering (what it reads was built by daemon.New).
		metricsAddr = ms.Addr().String()
		go func() {
			if err := ms.Serve(); err != nil {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
	}

	if err := d.Start(ctx); err != nil {
		return err
	}
	// SIGHUP reloads the TLS certificate, key and client CA bundle;
	// caught before serving, so that a client never sees it kill the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() { errc <- srv.Serve(lis) }()
	tcpAddr := ""
	if tcp != nil {
		tcpAddr = tcp.Addr().String()
		go func() { errc <- srv.Serve(tcp) }()
	}
	log.Info("pcnoded serving", "socket", cfg.API.Socket, "tcp", tcpAddr, "metrics", metricsAddr, "containerd", cfg.Containerd.Address,
		"namespace", cfg.Containerd.Namespace, "state_dir", cfg.Node.StateDir)
	// READY=1: the API is served (while containerd is down too: the
	// health service says NOT_SERVING and STATUS what it waits for).
	if err := sd.notify("READY=1", sdStatus(ready.why())); err != nil {
		log.Warn("systemd notification", "err", err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	hdone := make(chan struct{})
	go func() { defer close(hdone); ready.follow(hctx) }()
	defer func() { hcancel(); <-hdone }()

	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-hup:
			log.Info("SIGHUP: reloading TLS material")
			d.ReloadTLS()
		case <-ctx.Done():
			done = true
		}
	}
	// Running containers are left running: the next start re-attaches them.
	log.Info("shutting down; running tasks keep running")
	if err := sd.notify("STOPPING=1", sdStatus("stopping; running tasks keep running")); err != nil {
		log.Warn("systemd notification", "err", err)
	}
	hcancel()
	<-hdone
	hs.Shutdown()
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	return nil
}

// listenUnix listens on path with mode 0660, owned by group when given.
func listenUnix(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("api socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api socket %s is in use: is another pcnoded running?", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, err
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err == nil {
			err = os.Chown(path, 0, gid)
		}
		if err != nil {
			lis.Close()
			return nil, fmt.Errorf("api.socket_group: %w", err)
		}
	}
	return lis, nil
}

func lookupGroup(name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		return id, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
