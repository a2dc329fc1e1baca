package daemontest

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pcnode/pcnode/daemon/config"
)

// Config returns the configuration Start gives pcnoded before Options.Configure
// runs: the documented defaults, with the paths, socket and namespace of the
// test, no GPUs, small per-task defaults so that several tasks fit a small
// test machine at once, short grace periods, and log files large enough to
// keep a 50 MB output whole, and no metrics listener.
func Config(stateDir, socket, containerdAddress, namespace string, dataRoots []string) config.Config {
	cfg := config.DefaultConfig()
	cfg.Node.Name = "daemontest"
	cfg.Node.StateDir = stateDir
	cfg.API.Socket = socket
	cfg.Containerd.Address = containerdAddress
	cfg.Containerd.Namespace = namespace
	cfg.Paths.DataRoots = append([]string(nil), dataRoots...)
	cfg.Resources.ReservedCPU = config.MustQuantity("100m")
	cfg.Resources.ReservedMemory = config.MustQuantity("256Mi")
	cfg.Resources.DefaultCPU = config.MustQuantity("100m")
	cfg.Resources.DefaultMemory = config.MustQuantity("128Mi")
	cfg.Tasks.StopGracePeriod = config.Duration{Duration: 2 * time.Second}
	cfg.Tasks.StartupTimeout = config.Duration{Duration: 5 * time.Minute}
	cfg.Logs.MaxFileSize = config.MustQuantity("64Mi")
	cfg.Logs.MaxFiles = 5
	cfg.GPU.Backend = "none"
	// Tests run many daemons at once: the one that wants metrics picks
	// its own free port.
	cfg.Metrics.Address = "off"
	return cfg
}

// writeConfig writes cfg as TOML to path (0600: it may hold registry
// passwords).
func writeConfig(path string, cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("daemontest: invalid configuration: %w", err)
	}
	b, err := cfg.Encode()
	if err != nil {
		return fmt.Errorf("daemontest: encode configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
