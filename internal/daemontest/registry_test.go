package daemontest

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/testimage"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry(t, "alice", "s3cret")
	b := r.AddImage(t, "pcnode/pctest", "v1", testimage.Image{Name: "pcnode.test/registry:v1"})
	manifest := "/v2/pcnode/pctest/manifests/"
	blobs := "/v2/pcnode/pctest/blobs/"

	tests := []struct {
		name             string
		method, path     string
		user, pass       string
		wantStatus       int
		wantAuth         string
		wantDigest       digest.Digest // of the body (GET) and Docker-Content-Digest
		wantContentType  string
		wantErrorCode    string
		wantChallenge    bool
		wantEmptyBodyLen int64 // HEAD: Content-Length
	}{
		{name: "base without credentials", method: "GET", path: "/v2/", wantStatus: 401, wantAuth: "none", wantChallenge: true, wantErrorCode: "UNAUTHORIZED"},
		{name: "base with wrong password", method: "GET", path: "/v2/", user: "alice", pass: "wrong", wantStatus: 401, wantAuth: "rejected", wantChallenge: true, wantErrorCode: "UNAUTHORIZED"},
		{name: "base with wrong user", method: "GET", path: "/v2/", user: "bob", pass: "s3cret", wantStatus: 401, wantAuth: "rejected", wantChallenge: true, wantErrorCode: "UNAUTHORIZED"},
		{name: "base", method: "GET", path: "/v2/", user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok"},
		{name: "manifest by tag", method: "GET", path: manifest + "v1", user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok",
			wantDigest: b.ManifestDesc.Digest, wantContentType: ocispec.MediaTypeImageManifest},
		{name: "manifest by digest", method: "GET", path: manifest + b.ManifestDesc.Digest.String(), user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok",
			wantDigest: b.ManifestDesc.Digest, wantContentType: ocispec.MediaTypeImageManifest},
		{name: "manifest HEAD", method: "HEAD", path: manifest + "v1", user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok",
			wantDigest: b.ManifestDesc.Digest, wantContentType: ocispec.MediaTypeImageManifest, wantEmptyBodyLen: b.ManifestDesc.Size},
		{name: "manifest without credentials", method: "GET", path: manifest + "v1", wantStatus: 401, wantAuth: "none", wantChallenge: true, wantErrorCode: "UNAUTHORIZED"},
		{name: "config blob", method: "GET", path: blobs + b.ConfigDesc.Digest.String(), user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok",
			wantDigest: b.ConfigDesc.Digest},
		{name: "layer blob", method: "GET", path: blobs + b.LayerDesc.Digest.String(), user: "alice", pass: "s3cret", wantStatus: 200, wantAuth: "ok",
			wantDigest: b.LayerDesc.Digest},
		{name: "unknown tag", method: "GET", path: manifest + "v2", user: "alice", pass: "s3cret", wantStatus: 404, wantAuth: "ok", wantErrorCode: "MANIFEST_UNKNOWN"},
		{name: "unknown repository", method: "GET", path: "/v2/other/manifests/v1", user: "alice", pass: "s3cret", wantStatus: 404, wantAuth: "ok", wantErrorCode: "MANIFEST_UNKNOWN"},
		{name: "unknown blob", method: "GET", path: blobs + digest.FromString("x").String(), user: "alice", pass: "s3cret", wantStatus: 404, wantAuth: "ok", wantErrorCode: "BLOB_UNKNOWN"},
		{name: "write", method: "POST", path: blobs + "uploads/", user: "alice", pass: "s3cret", wantStatus: 405, wantAuth: "ok", wantErrorCode: "UNSUPPORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.Requests())
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+r.Host+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.path, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d (body %s)", tt.method, tt.path, resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (got != "") != tt.wantChallenge || tt.wantChallenge && !strings.HasPrefix(got, "Basic ") {
				t.Errorf("%s %s WWW-Authenticate = %q, want a Basic challenge: %v", tt.method, tt.path, got, tt.wantChallenge)
			}
			if tt.wantDigest != "" {
				if got := resp.Header.Get("Docker-Content-Digest"); got != tt.wantDigest.String() {
					t.Errorf("%s %s Docker-Content-Digest = %q, want %q", tt.method, tt.path, got, tt.wantDigest)
				}
				if tt.method == "GET" {
					if got := digest.FromBytes(body); got != tt.wantDigest {
						t.Errorf("%s %s body digest = %s, want %s", tt.method, tt.path, got, tt.wantDigest)
					}
				}
			}
			if tt.wantContentType != "" && resp.Header.Get("Content-Type") != tt.wantContentType {
				t.Errorf("%s %s Content-Type = %q, want %q", tt.method, tt.path, resp.Header.Get("Content-Type"), tt.wantContentType)
			}
			if tt.method == "HEAD" {
				if len(body) != 0 || resp.ContentLength != tt.wantEmptyBodyLen {
					t.Errorf("HEAD %s = %d body bytes, Content-Length %d; want 0, %d", tt.path, len(body), resp.ContentLength, tt.wantEmptyBodyLen)
				}
			}
			if tt.wantErrorCode != "" && tt.method != "HEAD" && !strings.Contains(string(body), `"code":"`+tt.wantErrorCode+`"`) {
				t.Errorf("%s %s body = %s, want error code %s", tt.method, tt.path, body, tt.wantErrorCode)
			}
			reqs := r.Requests()[before:]
			want := []RegistryRequest{{Method: tt.method, Path: tt.path, Authorization: tt.wantAuth, Status: tt.wantStatus}}
			if diff := cmp.Diff(want, reqs); diff != "" {
				t.Errorf("Requests() after %s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
		})
	}
}

func TestRegistryWithoutAuth(t *testing.T) {
	r := NewRegistry(t, "", "")
	r.AddImage(t, "open/pctest", "1", testimage.Image{})
	resp, err := http.Get("http://" + r.Host + "/v2/open/pctest/manifests/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET manifest without auth = %d, want 200", resp.StatusCode)
	}
	if got, want := r.Ref("open/pctest", "1"), r.Host+"/open/pctest:1"; got != want {
		t.Errorf("Ref(open/pctest, 1) = %q, want %q", got, want)
	}
}

func TestAddOCILayoutInvalid(t *testing.T) {
	tarOf := func(files map[string]string) io.Reader {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, data := range files {
			_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			_, _ = tw.Write([]byte(data))
		}
		_ = tw.Close()
		return &buf
	}
	bad := digest.FromString("other").Encoded()
	tests := []struct {
		name   string
		layout io.Reader
	}{
		{"not a tar", strings.NewReader(strings.Repeat("x", 1024))},
		{"no index", tarOf(map[string]string{"oci-layout": "{}"})},
		{"two manifests", tarOf(map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"digest":"sha256:` + bad + `"},{"digest":"sha256:` + bad + `"}]}`})},
		{"blob digest mismatch", tarOf(map[string]string{
			"index.json":          `{"schemaVersion":2,"manifests":[{"digest":"sha256:` + bad + `"}]}`,
			"blobs/sha256/" + bad: "not other",
		})},
		{"manifest missing", tarOf(map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"digest":"sha256:` + bad + `"}]}`})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Registry{manifests: map[string]blob{}, blobs: map[digest.Digest]blob{}}
			if err := r.AddOCILayout("x", "1", tt.layout); !errors.Is(err, ErrInvalidLayout) {
				t.Errorf("AddOCILayout(%s) = %v, want %v", tt.name, err, ErrInvalidLayout)
			}
		})
	}
}
