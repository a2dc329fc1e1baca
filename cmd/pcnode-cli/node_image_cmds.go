package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func durationOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func timestampAgo(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(-d)) }

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Show the node: capacity, allocation, GPUs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp.GetNode())
				}
				printNode(cmd.OutOrStdout(), resp.GetNode())
				return nil
			})
		},
	}
	for _, sub := range []struct {
		use, short string
		drain      bool
	}{{"drain", "Stop admitting new tasks", true}, {"resume", "Admit tasks again", false}} {
		drain := sub.drain
		cmd.AddCommand(&cobra.Command{
			Use: sub.use, Short: sub.short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
					var n *pcnodev1.Node
					if drain {
						resp, err := c.nodes.DrainNode(ctx, &pcnodev1.DrainNodeRequest{})
						if err != nil {
							return err
						}
						n = resp.GetNode()
					} else {
						resp, err := c.nodes.ResumeNode(ctx, &pcnodev1.ResumeNodeRequest{})
						if err != nil {
							return err
						}
						n = resp.GetNode()
					}
					if jsonOutput(cmd) {
						return printJSON(cmd.OutOrStdout(), n)
					}
					printDrainState(cmd.OutOrStdout(), n)
					return nil
				})
			},
		})
	}
	return cmd
}

// printDrainState says whether the node admits tasks, after drain or
// resume.
func printDrainState(w io.Writer, n *pcnodev1.Node) {
	if n.GetDraining() {
		fmt.Fprintf(w, "node %s is draining: it admits no new tasks; %d running and %d queued tasks go on (pcnode-cli node resume to admit again)\n",
			n.GetName(), n.GetRunningTasks(), n.GetQueuedTasks())
		return
	}
	fmt.Fprintf(w, "node %s admits tasks (%d running, %d queued)\n", n.GetName(), n.GetRunningTasks(), n.GetQueuedTasks())
}

func fmtList(l *pcnodev1.ResourceList) string {
	return fmt.Sprintf("cpu %s, memory %s, gpus %d", humanCPU(l.GetCpuMillis()), humanBytes(l.GetMemoryBytes()), l.GetGpus())
}

func printNode(w io.Writer, n *pcnodev1.Node) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", n.GetName())
	fmt.Fprintf(tw, "version:\tpcnoded %s, containerd %s\n", n.GetVersion(), n.GetContainerdVersion())
	if st := n.GetStartTime(); st != nil {
		fmt.Fprintf(tw, "up:\t%s (since %s)\n", humanDuration(now().Sub(st.AsTime()).Truncate(time.Second)), humanTime(st.AsTime()))
	}
	fmt.Fprintf(tw, "gpu backend:\t%s\n", n.GetGpuBackend())
	if n.GetDriverVersion() != "" {
		fmt.Fprintf(tw, "driver:\t%s (CUDA %s)\n", n.GetDriverVersion(), n.GetCudaVersion())
	}
	fmt.Fprintf(tw, "capacity:\t%s\n", fmtList(n.GetCapacity()))
	fmt.Fprintf(tw, "allocatable:\t%s\n", fmtList(n.GetAllocatable()))
	fmt.Fprintf(tw, "allocated:\t%s\n", fmtList(n.GetAllocated()))
	fmt.Fprintf(tw, "tasks:\t%d running, %d queued\n", n.GetRunningTasks(), n.GetQueuedTasks())
	fmt.Fprintf(tw, "draining:\t%v\n", n.GetDraining())
	for _, k := range slices.Sorted(maps.Keys(n.GetLabels())) {
		fmt.Fprintf(tw, "label:\t%s=%s\n", printable(k), printable(n.GetLabels()[k]))
	}
	tw.Flush()
	if len(n.GetGpus()) == 0 {
		fmt.Fprintln(w, "gpus: none")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tUUID\tMODEL\tMEMORY\tUSED\tTEMP\tUTIL\tPOWER\tNUMA\tHEALTH\tLAST XID\tTASK")
	na := func(p any) string {
		switch v := p.(type) {
		case *int64:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *int32:
			if v != nil {
				return fmt.Sprint(*v)
			}
		}
		return "n/a"
	}
	bytesOr := func(p *int64) string {
		if p == nil {
			return "n/a"
		}
		return humanBytes(*p)
	}
	for _, g := range n.GetGpus() {
		health := strings.ToLower(strings.TrimPrefix(g.GetHealth().String(), "GPU_HEALTH_"))
		if g.GetHealth() == pcnodev1.GpuHealth_GPU_HEALTH_UNSPECIFIED {
			health = "unknown"
		}
		xid := "-"
		if x := g.GetLastXid(); x != nil {
			xid = fmt.Sprintf("%d", x.GetCode())
		}
		temp, util, power := na(g.TemperatureCelsius), na(g.UtilizationPercent), "n/a"
		if g.TemperatureCelsius != nil {
			temp += "C"
		}
		if g.UtilizationPercent != nil {
			util += "%"
		}
		if g.PowerDrawMilliwatts != nil {
			power = fmt.Sprintf("%dW", g.GetPowerDrawMilliwatts()/1000)
			if g.PowerLimitMilliwatts != nil {
				power += fmt.Sprintf("/%dW", g.GetPowerLimitMilliwatts()/1000)
			}
		}
		task := g.GetHolderTaskId()
		if task == "" {
			task = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.GetIndex(), printable(g.GetUuid()), printable(g.GetModel()),
			bytesOr(g.MemoryTotalBytes), bytesOr(g.MemoryUsedBytes), temp, util, power, na(g.NumaNode), health, xid, task)
	}
	tw.Flush()
}

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage the node's images"}
	var name, format string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import an OCI or docker-archive tarball (- for stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			md := &pcnodev1.ImportImageMetadata{Reference: name}
			switch format {
			case "", "auto":
			case "oci":
				md.Format = pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_OCI
			case "docker":
				md.Format = pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_DOCKER
			default:
				return fmt.Errorf("--format: want auto, oci or docker")
			}
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					md.SizeBytes = fi.Size()
				}
				r = f
			}
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				s, err := c.images.ImportImage(ctx)
				if err != nil {
					return err
				}
				if err := s.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Metadata{Metadata: md}}); err != nil {
					return err
				}
				view := newProgressView(ctx, cmd, "import "+printable(args[0]))
				buf := make([]byte, 1<<20)
				var sent int64
				for {
					n, rerr := r.Read(buf)
					if n > 0 {
						if err := s.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Chunk{Chunk: buf[:n]}}); err != nil {
							break // the server's reason comes from CloseAndRecv
						}
						sent += int64(n)
						view.update("sending", sent, md.SizeBytes)
					}
					if rerr == io.EOF {
						break
					}
					if rerr != nil {
						view.finish(false)
						return rerr
					}
				}
				view.update("unpacking", sent, md.SizeBytes)
				resp, err := s.CloseAndRecv()
				view.finish(err == nil)
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				for _, img := range resp.GetImages() {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.GetName(), img.GetDigest())
				}
				return nil
			})
		},
	}
	imp.Flags().StringVar(&name, "name", "", "reference for images the archive does not name")
	imp.Flags().StringVar(&format, "format", "auto", "archive format: auto, oci or docker")

	var user, passEnv string
	pull := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &pcnodev1.PullImageRequest{Reference: args[0]}
			if user != "" || passEnv != "" {
				req.Auth = &pcnodev1.RegistryAuth{Username: user, Password: os.Getenv(passEnv)}
			}
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				s, err := c.images.PullImage(ctx, req)
				if err != nil {
					return err
				}
				view := newProgressView(ctx, cmd, "pull "+printable(args[0]))
				var agg pullAggregate
				for {
					resp, err := s.Recv()
					if err != nil {
						view.finish(false)
						if errors.Is(err, io.EOF) {
							return fmt.Errorf("pull ended without an image")
						}
						return err
					}
					if p := resp.GetProgress(); p != nil {
						view.update(agg.add(p))
					}
					if img := resp.GetImage(); img != nil {
						view.finish(true)
						if jsonOutput(cmd) {
							return printJSON(cmd.OutOrStdout(), img)
						}
						_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.GetName(), img.GetDigest())
						return err
					}
				}
			})
		},
	}
	pull.Flags().StringVar(&user, "username", "", "registry user (default: the node's configured credentials)")
	pull.Flags().StringVar(&passEnv, "password-env", "", "name of the environment variable holding the password")

	ls := &cobra.Command{
		Use: "ls", Short: "List images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.images.ListImages(ctx, &pcnodev1.ListImagesRequest{})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				printImageTable(cmd.OutOrStdout(), resp.GetImages())
				return nil
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm REF", Short: "Remove an image (refused while an unfinished task uses it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				_, err := c.images.RemoveImage(ctx, &pcnodev1.RemoveImageRequest{Reference: args[0]})
				return err
			})
		},
	}
	cmd.AddCommand(imp, pull, ls, rm)
	return cmd
}

// printImageTable writes the image ls table.
func printImageTable(w io.Writer, images []*pcnodev1.Image) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED\tTASKS")
	for _, img := range images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", printable(img.GetName()), printable(img.GetDigest()), humanBytes(img.GetSizeBytes()),
			humanTime(img.GetCreateTime().AsTime()), len(img.GetUsedByTaskIds()))
	}
	tw.Flush()
}

func newPCCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pc IMAGE",
		Short: "Show an image's processing-container.json (read without running it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *nodeConn) error {
				resp, err := c.images.GetProcessingContainer(ctx, &pcnodev1.GetProcessingContainerRequest{Reference: args[0]})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				pc := resp.GetProcessingContainer()
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%s (%s)\n%s\n", pc.GetName(), resp.GetDigest(), pc.GetDescription())
				for _, t := range pc.GetTemplates() {
					fmt.Fprintf(w, "\ntemplate %s: %s\n", t.GetIdentifier(), t.GetDescription())
					if len(t.GetCommand()) > 0 {
						fmt.Fprintf(w, "  command: %s\n", strings.Join(t.GetCommand(), " "))
					}
					for _, e := range t.GetEnv() {
						fmt.Fprintf(w, "  env %s=%q", e.GetName(), e.GetValue())
						if e.GetType() != pcnodev1.EnvVarType_ENV_VAR_TYPE_UNSPECIFIED {
							// The canonical name: Kaapana's "int" shows as integer.
							fmt.Fprintf(w, " %s", strings.ToLower(strings.TrimPrefix(e.GetType().String(), "ENV_VAR_TYPE_")))
						}
						if len(e.GetChoices()) > 0 {
							fmt.Fprintf(w, " choices %v", e.GetChoices())
						}
						if e.Adjustable != nil && !e.GetAdjustable() {
							fmt.Fprint(w, " (fixed)")
						}
						fmt.Fprintln(w)
					}
					for _, ch := range t.GetInputs() {
						fmt.Fprintf(w, "  input  %s -> %s\n", ch.GetName(), ch.GetMountedPath())
					}
					for _, ch := range t.GetOutputs() {
						fmt.Fprintf(w, "  output %s -> %s\n", ch.GetName(), ch.GetMountedPath())
					}
				}
				for _, wn := range resp.GetWarnings() {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", wn)
				}
				return nil
			})
		},
	}
}
