package runtime

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testRegistry is a read-only OCI distribution registry serving one image
// from an OCI image-layout tarball, behind basic auth.
type testRegistry struct {
	user, pass string
	repo, tag  string
	manifest   ocispec.Descriptor
	blobs      map[string][]byte // by digest
	requests   atomic.Int64
	denied     atomic.Int64
}

// newTestRegistry serves the image of the OCI archive at archive as
// repo:tag on a loopback httptest server and returns its host:port.
func newTestRegistry(t *testing.T, archive, repo, tag, user, pass string) (*testRegistry, string) {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{user: user, pass: pass, repo: repo, tag: tag, blobs: map[string][]byte{}}
	var index ocispec.Index
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case hdr.Name == "index.json":
			if err := json.Unmarshal(data, &index); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(hdr.Name, "blobs/sha256/") && hdr.Typeflag == tar.TypeReg:
			r.blobs["sha256:"+strings.TrimPrefix(hdr.Name, "blobs/sha256/")] = data
		}
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("test archive index has %d manifests, want 1", len(index.Manifests))
	}
	r.manifest = index.Manifests[0]
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, strings.TrimPrefix(srv.URL, "http://")
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
		r.denied.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="pcnode-test"`)
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "read-only registry")
		return
	}
	if req.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/"+r.repo+"/")
	if !ok {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known")
		return
	}
	kind, ref, _ := strings.Cut(rest, "/")
	var (
		data      []byte
		mediaType = "application/octet-stream"
	)
	switch kind {
	case "manifests":
		if ref != r.tag && ref != r.manifest.Digest.String() {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		data, mediaType = r.blobs[r.manifest.Digest.String()], r.manifest.MediaType
		ref = r.manifest.Digest.String()
	case "blobs":
		var found bool
		if data, found = r.blobs[ref]; !found {
			registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
	default:
		registryError(w, http.StatusNotFound, "UNSUPPORTED", "unknown endpoint")
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", ref)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(data)
	}
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}
