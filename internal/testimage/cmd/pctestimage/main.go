// Command pctestimage writes pcnode's test image (package
// internal/testimage: the pctest program with a processing-container.json)
// as an OCI image-layout or docker-archive tarball, for tests that are not
// written in Go (the Python client's pytest suite imports it into a real
// pcnoded with ImportImage).
//
//	pctestimage -o FILE [-name REF] [-processing-container FILE | -no-processing-container] [-format oci|docker]
//
// -processing-container names a file whose bytes become
// /processing-container.json as they are (it may be invalid on purpose);
// without it the image carries testimage.DefaultProcessingContainer. The
// output is written to a temporary file beside FILE and renamed into place,
// so a reader never sees half an archive. It prints the image's normalised
// reference and manifest digest, tab-separated, on stdout.
//
// It must run from a build of the module source (go build, not -trimpath):
// the pctest program is compiled from internal/testimage/testprog on first
// use, with the go command on PATH.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pcnode/pcnode/internal/testimage"
)

// maxProcessingContainer bounds the file read for -processing-container.
const maxProcessingContainer = 16 << 20

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "pctestimage: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pctestimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output tarball (required)")
	name := fs.String("name", "", "image reference (default "+testimage.DefaultName+")")
	pcFile := fs.String("processing-container", "", "file to write as /processing-container.json")
	omit := fs.Bool("no-processing-container", false, "leave /processing-container.json out")
	format := fs.String("format", "oci", "archive format: oci or docker")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *out == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}
	if *omit && *pcFile != "" {
		return fmt.Errorf("%w: -processing-container and -no-processing-container exclude each other", errUsage)
	}
	var f testimage.Format
	switch *format {
	case "oci":
		f = testimage.FormatOCI
	case "docker":
		f = testimage.FormatDockerArchive
	default:
		return fmt.Errorf("%w: -format %q: want oci or docker", errUsage, *format)
	}
	img := testimage.Image{Name: *name, OmitProcessingContainer: *omit}
	if *pcFile != "" {
		b, err := readBounded(*pcFile, maxProcessingContainer)
		if err != nil {
			return err
		}
		img.ProcessingContainer = b
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".pctestimage-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	b, err := testimage.WriteFile(ctx, tmpName, img, f)
	if err != nil {
		return err
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmpName, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\t%s\n", b.Name, b.ManifestDesc.Digest)
	return nil
}

// readBounded reads a regular file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("-processing-container %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("-processing-container %s: larger than %d bytes", path, limit)
	}
	return b, nil
}
