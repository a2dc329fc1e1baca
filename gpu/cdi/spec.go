package cdi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/pcnode/pcnode/gpu"
)

const (
	// Kind is the CDI kind of GPU devices.
	Kind = "nvidia.com/gpu"
	// SpecFileName is the file WriteSpec writes in its directory.
	SpecFileName = "pcnode-nvidia-gpu.json"
	// EnvVisibleDevices is the variable naming the GPUs a container sees.
	EnvVisibleDevices = "NVIDIA_VISIBLE_DEVICES"
)

// DefaultSpecDirs are the CDI spec directories, lowest priority first.
var DefaultSpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// commonNodes are device nodes every GPU container needs; required ones
// must exist for WriteSpec, the others are added where they exist.
var commonNodes = []struct {
	name     string
	required bool
}{
	{"nvidiactl", true},
	{"nvidia-uvm", false},
	{"nvidia-uvm-tools", false},
	{"nvidia-modeset", false},
}

// Options tune WriteSpec.
type Options struct {
	// DevRoot is the host directory holding the device nodes (nvidia0,
	// nvidiactl, …); empty means "/dev". Inside the container the nodes are
	// always under /dev.
	DevRoot string
}

// DeviceName returns the qualified CDI name of a GPU, "nvidia.com/gpu=<uuid>".
func DeviceName(uuid string) string {
	vendor, class := parser.ParseQualifier(Kind)
	return parser.QualifiedName(vendor, class, uuid)
}

// VisibleDevices returns the NVIDIA_VISIBLE_DEVICES entry for the given
// GPUs ("NVIDIA_VISIBLE_DEVICES=uuid1,uuid2"), or "…=void" for none.
func VisibleDevices(uuids []string) string {
	if len(uuids) == 0 {
		return EnvVisibleDevices + "=void"
	}
	return EnvVisibleDevices + "=" + strings.Join(uuids, ",")
}

// BuildSpec returns the CDI spec WriteSpec would write for devices. Every
// device needs a valid UUID and a minor number, and its device node (and
// /dev/nvidiactl) must exist under DevRoot.
func BuildSpec(devices []gpu.Device, opts Options) (*specs.Spec, error) {
	devRoot := opts.DevRoot
	if devRoot == "" {
		devRoot = "/dev"
	}
	node := func(name string) (*specs.DeviceNode, error) {
		host := filepath.Join(devRoot, name)
		if _, err := os.Lstat(host); err != nil {
			return nil, err
		}
		n := &specs.DeviceNode{Path: "/dev/" + name}
		if filepath.Clean(devRoot) != "/dev" {
			n.HostPath = host
		}
		return n, nil
	}

	spec := &specs.Spec{Kind: Kind}
	for _, c := range commonNodes {
		n, err := node(c.name)
		switch {
		case err == nil:
			spec.ContainerEdits.DeviceNodes = append(spec.ContainerEdits.DeviceNodes, n)
		case c.required || !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("cdi spec: device node %s: %w", c.name, err)
		}
	}
	seen := map[string]bool{}
	for _, d := range devices {
		if err := gpu.ValidateUUID(d.UUID); err != nil {
			return nil, fmt.Errorf("cdi spec: %w", err)
		}
		if d.Minor == nil {
			return nil, fmt.Errorf("cdi spec: gpu %s: minor number unknown, cannot name its device node", d.UUID)
		}
		if d.Index < 0 || *d.Minor < 0 {
			return nil, fmt.Errorf("cdi spec: gpu %s: negative index or minor number", d.UUID)
		}
		n, err := node("nvidia" + strconv.Itoa(*d.Minor))
		if err != nil {
			return nil, fmt.Errorf("cdi spec: gpu %s: device node: %w", d.UUID, err)
		}
		edits := specs.ContainerEdits{
			Env:         []string{EnvVisibleDevices + "=" + d.UUID},
			DeviceNodes: []*specs.DeviceNode{n},
		}
		for _, name := range []string{d.UUID, strconv.Itoa(d.Index)} {
			if seen[name] {
				return nil, fmt.Errorf("cdi spec: device name %q used twice", name)
			}
			seen[name] = true
			if err := parser.ValidateDeviceName(name); err != nil {
				return nil, fmt.Errorf("cdi spec: %w", err)
			}
			spec.Devices = append(spec.Devices, specs.Device{Name: name, ContainerEdits: edits})
		}
	}
	if len(spec.Devices) == 0 {
		return nil, errors.New("cdi spec: no gpu to write")
	}
	version, err := cdiapi.MinimumRequiredVersion(spec)
	if err != nil {
		return nil, fmt.Errorf("cdi spec: %w", err)
	}
	spec.Version = version
	return spec, nil
}

// WriteSpec builds the spec for devices (see BuildSpec) and writes it
// atomically, validated by CDI, to dir/SpecFileName, creating dir if
// needed. It returns the file's path.
func WriteSpec(dir string, devices []gpu.Device, opts Options) (string, error) {
	spec, err := BuildSpec(devices, opts)
	if err != nil {
		return "", err
	}
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dir), cdiapi.WithAutoRefresh(false))
	if err != nil {
		return "", fmt.Errorf("cdi spec: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cdi spec: %w", err)
	}
	if err := cache.WriteSpec(spec, SpecFileName); err != nil {
		return "", fmt.Errorf("cdi spec: write in %s: %w", dir, err)
	}
	return filepath.Join(dir, SpecFileName), nil
}
