package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/specpb"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// imageNode is what ImageService needs of the node: the local node's
// image operations (*daemon.Daemon: local_images.go). The service sees nothing
// else of the daemon.
type imageNode interface {
	PullImage(ctx context.Context, ref string, auth *runtime.Auth, progress func(runtime.Progress)) (runtime.Image, error)
	ImportImage(ctx context.Context, r io.Reader, opts runtime.ImportOptions) ([]runtime.Image, error)
	ListImages(ctx context.Context) ([]runtime.Image, map[string][]string, error)
	RemoveImage(ctx context.Context, ref string) error
	ProcessingContainer(ctx context.Context, ref string) (runtime.Image, *spec.ProcessingContainer, []spec.Warning, error)
}

var _ imageNode = (*daemon.Daemon)(nil)

// imageService is ImageService: each RPC checks and converts its request,
// calls the local node (d) and converts the result.
type imageService struct {
	pcnodev1.UnimplementedImageServiceServer
	d imageNode
}

func requireRef(field, ref string) (string, error) {
	n, err := runtime.NormalizeRef(ref)
	if err != nil {
		var p problems
		p.add(field, "%v", err)
		return "", invalid(p)
	}
	return n, nil
}

func (s *imageService) PullImage(req *pcnodev1.PullImageRequest, stream pcnodev1.ImageService_PullImageServer) error {
	ref, err := requireRef("reference", req.GetReference())
	if err != nil {
		return err
	}
	var auth *runtime.Auth
	if a := req.GetAuth(); a != nil && (a.GetUsername() != "" || a.GetPassword() != "") {
		auth = &runtime.Auth{Username: a.GetUsername(), Password: a.GetPassword()}
	}
	ctx := stream.Context()
	img, err := s.d.PullImage(ctx, ref, auth, func(p runtime.Progress) {
		_ = stream.Send(&pcnodev1.PullImageResponse{Result: &pcnodev1.PullImageResponse_Progress{Progress: &pcnodev1.ImageProgress{
			Reference: p.Ref, Status: p.Status, DoneBytes: p.Offset, TotalBytes: p.Total,
		}}})
	})
	if err != nil {
		return err
	}
	return stream.Send(&pcnodev1.PullImageResponse{Result: &pcnodev1.PullImageResponse_Image{Image: imageToProto(img, nil)}})
}

// importReader turns the chunks of an ImportImage stream into a reader.
type importReader struct {
	stream pcnodev1.ImageService_ImportImageServer
	buf    []byte
}

func (r *importReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		req, err := r.stream.Recv()
		if err != nil {
			return 0, err // io.EOF at the end
		}
		if req.GetMetadata() != nil {
			return 0, fmt.Errorf("import: metadata may only be the first message")
		}
		r.buf = req.GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (s *imageService) ImportImage(stream pcnodev1.ImageService_ImportImageServer) error {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			var p problems
			p.add("metadata", "the stream was empty")
			return invalid(p)
		}
		return err
	}
	md := first.GetMetadata()
	if md == nil {
		var p problems
		p.add("metadata", "the first message must carry metadata")
		return invalid(p)
	}
	opts := runtime.ImportOptions{}
	switch md.GetFormat() {
	case pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_UNSPECIFIED:
	case pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_OCI:
		opts.Format = runtime.FormatOCI
	case pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_DOCKER:
		opts.Format = runtime.FormatDocker
	default:
		var p problems
		p.add("metadata.format", "unknown format %d", md.GetFormat())
		return invalid(p)
	}
	if md.GetReference() != "" {
		if opts.RefName, err = requireRef("metadata.reference", md.GetReference()); err != nil {
			return err
		}
	}
	imgs, err := s.d.ImportImage(stream.Context(), &importReader{stream: stream}, opts)
	if err != nil {
		return importStatus(err)
	}
	resp := &pcnodev1.ImportImageResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, imageToProto(img, nil))
	}
	return stream.SendAndClose(resp)
}

// importStatus turns an import that passed one of the [images] caps into
// RESOURCE_EXHAUSTED naming the configuration key, with a
// google.rpc.QuotaFailure detail; other errors pass through.
func importStatus(err error) error {
	var le *runtime.ImportLimitError
	if !errors.As(err, &le) {
		return err
	}
	key := "images." + le.Limit
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("image archive refused: %s passes %s = %d", le.What, key, le.Max))
	if d, derr := st.WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
		Subject: key, Description: le.What,
	}}}); derr == nil {
		st = d
	}
	return st.Err()
}

func (s *imageService) ListImages(ctx context.Context, _ *pcnodev1.ListImagesRequest) (*pcnodev1.ListImagesResponse, error) {
	imgs, users, err := s.d.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pcnodev1.ListImagesResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, imageToProto(img, users[img.Name]))
	}
	return resp, nil
}

func (s *imageService) RemoveImage(ctx context.Context, req *pcnodev1.RemoveImageRequest) (*pcnodev1.RemoveImageResponse, error) {
	ref, err := requireRef("reference", req.GetReference())
	if err != nil {
		return nil, err
	}
	if err := s.d.RemoveImage(ctx, ref); err != nil {
		return nil, err
	}
	return &pcnodev1.RemoveImageResponse{}, nil
}

func (s *imageService) GetProcessingContainer(ctx context.Context, req *pcnodev1.GetProcessingContainerRequest) (*pcnodev1.GetProcessingContainerResponse, error) {
	ref, err := requireRef("reference", req.GetReference())
	if err != nil {
		return nil, err
	}
	img, pc, warnings, err := s.d.ProcessingContainer(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &pcnodev1.GetProcessingContainerResponse{
		Digest:              img.Digest,
		ProcessingContainer: specpb.ProcessingContainer(pc),
		Warnings:            specpb.Warnings(warnings),
	}, nil
}

func imageToProto(img runtime.Image, users []string) *pcnodev1.Image {
	return &pcnodev1.Image{
		Name: img.Name, Digest: img.Digest, SizeBytes: img.Size,
		CreateTime: timestamppb.New(img.Created), UsedByTaskIds: users,
	}
}
