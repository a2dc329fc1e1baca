package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/spec"
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
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{})
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
				return withClient(cmd, func(ctx context.Context, c *client.Client) error {
					var n *pcnodev1.Node
					if drain {
						resp, err := c.Nodes.DrainNode(ctx, &pcnodev1.DrainNodeRequest{})
						if err != nil {
							return err
						}
						n = resp.GetNode()
					} else {
						resp, err := c.Nodes.ResumeNode(ctx, &pcnodev1.ResumeNodeRequest{})
						if err != nil {
							return err
						}
						n = resp.GetNode()
					}
					_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s draining=%v\n", n.GetName(), n.GetDraining())
					return err
				})
			},
		})
	}
	return cmd
}

func fmtList(l *pcnodev1.ResourceList) string {
	return fmt.Sprintf("cpu %s, memory %s, gpus %d", spec.FormatMillis(l.GetCpuMillis()), spec.FormatBytes(l.GetMemoryBytes()), l.GetGpus())
}

func printNode(w io.Writer, n *pcnodev1.Node) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", n.GetName())
	fmt.Fprintf(tw, "version:\tpcnoded %s, containerd %s\n", n.GetVersion(), n.GetContainerdVersion())
	fmt.Fprintf(tw, "gpu backend:\t%s\n", n.GetGpuBackend())
	if n.GetDriverVersion() != "" {
		fmt.Fprintf(tw, "driver:\t%s (CUDA %s)\n", n.GetDriverVersion(), n.GetCudaVersion())
	}
	fmt.Fprintf(tw, "capacity:\t%s\n", fmtList(n.GetCapacity()))
	fmt.Fprintf(tw, "allocatable:\t%s\n", fmtList(n.GetAllocatable()))
	fmt.Fprintf(tw, "allocated:\t%s\n", fmtList(n.GetAllocated()))
	fmt.Fprintf(tw, "tasks:\t%d running, %d queued\n", n.GetRunningTasks(), n.GetQueuedTasks())
	fmt.Fprintf(tw, "draining:\t%v\n", n.GetDraining())
	for k, v := range n.GetLabels() {
		fmt.Fprintf(tw, "label:\t%s=%s\n", k, v)
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
		return spec.FormatBytes(*p)
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.GetIndex(), g.GetUuid(), g.GetModel(),
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
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				s, err := c.Images.ImportImage(ctx)
				if err != nil {
					return err
				}
				if err := s.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Metadata{Metadata: md}}); err != nil {
					return err
				}
				buf := make([]byte, 1<<20)
				var sent int64
				for {
					n, rerr := r.Read(buf)
					if n > 0 {
						if err := s.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Chunk{Chunk: buf[:n]}}); err != nil {
							break // the server's reason comes from CloseAndRecv
						}
						sent += int64(n)
						progress(cmd, "importing", sent, md.SizeBytes)
					}
					if rerr == io.EOF {
						break
					}
					if rerr != nil {
						return rerr
					}
				}
				resp, err := s.CloseAndRecv()
				endProgress(cmd)
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
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				s, err := c.Images.PullImage(ctx, req)
				if err != nil {
					return err
				}
				for {
					resp, err := s.Recv()
					if err != nil {
						endProgress(cmd)
						if errors.Is(err, io.EOF) {
							return fmt.Errorf("pull ended without an image")
						}
						return err
					}
					if p := resp.GetProgress(); p != nil {
						progress(cmd, p.GetStatus(), p.GetDoneBytes(), p.GetTotalBytes())
					}
					if img := resp.GetImage(); img != nil {
						endProgress(cmd)
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
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Images.ListImages(ctx, &pcnodev1.ListImagesRequest{})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED\tTASKS")
				for _, img := range resp.GetImages() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", img.GetName(), img.GetDigest(), spec.FormatBytes(img.GetSizeBytes()),
						fmtTime(img.GetCreateTime().AsTime()), len(img.GetUsedByTaskIds()))
				}
				return tw.Flush()
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm REF", Short: "Remove an image (refused while an unfinished task uses it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				_, err := c.Images.RemoveImage(ctx, &pcnodev1.RemoveImageRequest{Reference: args[0]})
				return err
			})
		},
	}
	cmd.AddCommand(imp, pull, ls, rm)
	return cmd
}

// progress draws a one-line progress indicator on stderr.
func progress(cmd *cobra.Command, what string, done, total int64) {
	if jsonOutput(cmd) {
		return
	}
	if total > 0 {
		pct := done * 100 / total
		bar := strings.Repeat("=", int(pct/5)) + strings.Repeat(" ", 20-int(pct/5))
		fmt.Fprintf(cmd.ErrOrStderr(), "\r%-12s [%s] %3d%% %s", what, bar, pct, spec.FormatBytes(done))
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\r%-12s %s", what, spec.FormatBytes(done))
}

func endProgress(cmd *cobra.Command) {
	if !jsonOutput(cmd) {
		fmt.Fprintln(cmd.ErrOrStderr())
	}
}

func newPCCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pc IMAGE",
		Short: "Show an image's processing-container.json (read without running it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Images.GetProcessingContainer(ctx, &pcnodev1.GetProcessingContainerRequest{Reference: args[0]})
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
