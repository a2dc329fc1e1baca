package daemontest

import (
	"archive/tar"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/pcnode/pcnode/internal/testimage"
)

// RegistryRealm is the basic-auth realm the registry announces.
const RegistryRealm = "pcnode-daemontest"

// Registry is an in-process, read-only OCI distribution registry on
// loopback (plain HTTP), serving images added with Add. When Username is
// set, every request needs those basic-auth credentials; others get 401 with
// a Basic challenge, as registries do. In token mode (NewTokenRealm) every
// request needs a bearer token instead, and the challenge names the realm
// that hands it out.
type Registry struct {
	// Host is "127.0.0.1:PORT", the host part of the image references.
	Host string
	// Username and Password are the credentials required ("" : none).
	Username, Password string

	srv *httptest.Server

	mu sync.Mutex
	// realm and token are set in token mode (NewTokenRealm): requests
	// need "Bearer <token>" and are challenged to fetch it from realm.
	realm, token string
	manifests    map[string]blob // "repo:tag" and "repo@digest"
	blobs        map[digest.Digest]blob
	requests     []RegistryRequest
	// hold, while set, is what blob GETs wait on (HoldBlobs); held is
	// closed when the first one waits.
	hold, held chan struct{}
}

// HoldBlobs makes every later blob GET wait, before it answers, until
// release is called (or its client goes away): a test holds a pull in the
// middle. held is closed when the first blob GET is waiting.
func (r *Registry) HoldBlobs() (held <-chan struct{}, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hold, h := make(chan struct{}), make(chan struct{})
	r.hold, r.held = hold, h
	var once sync.Once
	return h, func() {
		once.Do(func() {
			r.mu.Lock()
			r.hold, r.held = nil, nil
			r.mu.Unlock()
			close(hold)
		})
	}
}

// RegistryRequest is one request the registry served.
type RegistryRequest struct {
	Method, Path string
	// Authorization says how the request authenticated: "none", "ok" or
	// "rejected".
	Authorization string
	Status        int
}

type blob struct {
	mediaType string
	data      []byte
}

// NewRegistry starts a registry that requires username and password (no
// authentication when username is empty); it stops when t ends.
func NewRegistry(t testing.TB, username, password string) *Registry {
	t.Helper()
	r := &Registry{
		Username:  username,
		Password:  password,
		manifests: map[string]blob{},
		blobs:     map[digest.Digest]blob{},
	}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// Ref returns the reference of repo:tag on this registry.
func (r *Registry) Ref(repo, tag string) string { return r.Host + "/" + repo + ":" + tag }

// AddImage builds img and serves it as repo:tag; it returns the build
// (Built.ManifestDesc.Digest is the digest a pull resolves to).
func (r *Registry) AddImage(t testing.TB, repo, tag string, img testimage.Image) *testimage.Built {
	t.Helper()
	b := BuildImage(t, img)
	var layout bytes.Buffer
	if err := b.WriteOCI(&layout); err != nil {
		t.Fatalf("WriteOCI(%s) = %v", b.Name, err)
	}
	if err := r.AddOCILayout(repo, tag, &layout); err != nil {
		t.Fatalf("Registry.AddOCILayout(%s:%s) = %v", repo, tag, err)
	}
	return b
}

// AddOCILayout serves the single manifest of an OCI image-layout tarball
// as repo:tag, with its blobs.
func (r *Registry) AddOCILayout(repo, tag string, layout io.Reader) error {
	files := map[string][]byte{}
	tr := tar.NewReader(layout)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidLayout, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidLayout, err)
		}
		files[path.Clean(hdr.Name)] = data
	}
	var index ocispec.Index
	if err := json.Unmarshal(files[ocispec.ImageIndexFile], &index); err != nil {
		return fmt.Errorf("%w: index.json: %w", ErrInvalidLayout, err)
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%w: index.json lists %d manifests, want 1", ErrInvalidLayout, len(index.Manifests))
	}
	desc := index.Manifests[0]
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, data := range files {
		enc, ok := strings.CutPrefix(name, "blobs/sha256/")
		if !ok {
			continue
		}
		dgst := digest.NewDigestFromEncoded(digest.SHA256, enc)
		if digest.FromBytes(data) != dgst {
			return fmt.Errorf("%w: blob %s does not match its digest", ErrInvalidLayout, name)
		}
		r.blobs[dgst] = blob{mediaType: "application/octet-stream", data: data}
	}
	m, ok := r.blobs[desc.Digest]
	if !ok {
		return fmt.Errorf("%w: manifest %s missing", ErrInvalidLayout, desc.Digest)
	}
	mb := blob{mediaType: desc.MediaType, data: m.data}
	r.manifests[repo+":"+tag] = mb
	r.manifests[repo+"@"+desc.Digest.String()] = mb
	return nil
}

// Requests returns the requests served so far.
func (r *Registry) Requests() []RegistryRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RegistryRequest(nil), r.requests...)
}

// ServeHTTP implements the read side of the OCI distribution API: /v2/,
// manifests and blobs, GET and HEAD.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rec := RegistryRequest{Method: req.Method, Path: req.URL.Path, Authorization: "none"}
	defer func() {
		r.mu.Lock()
		r.requests = append(r.requests, rec)
		r.mu.Unlock()
	}()
	r.mu.Lock()
	realm, token := r.realm, r.token
	r.mu.Unlock()
	if realm != "" {
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte("Bearer "+token)) == 1 {
			rec.Authorization = "ok"
		} else {
			if req.Header.Get("Authorization") != "" {
				rec.Authorization = "rejected"
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:pcnode:pull"`, realm, RegistryRealm))
			rec.Status = registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	} else if r.Username != "" {
		user, pass, ok := req.BasicAuth()
		switch {
		case ok && subtle.ConstantTimeCompare([]byte(user), []byte(r.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(r.Password)) == 1:
			rec.Authorization = "ok"
		default:
			if ok {
				rec.Authorization = "rejected"
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="`+RegistryRealm+`"`)
			rec.Status = registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		rec.Status = registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "read-only registry")
		return
	}
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		rec.Status = http.StatusOK
		_, _ = io.WriteString(w, "{}")
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		rec.Status = registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "not a registry path")
		return
	}
	var (
		b     blob
		found bool
	)
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		repo, ref := rest[:i], rest[i+len("/manifests/"):]
		key := repo + ":" + ref
		if strings.HasPrefix(ref, "sha256:") {
			key = repo + "@" + ref
		}
		r.mu.Lock()
		b, found = r.manifests[key]
		r.mu.Unlock()
		if !found {
			rec.Status = registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown: "+repo+" "+ref)
			return
		}
	} else if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		dgst, err := digest.Parse(rest[i+len("/blobs/"):])
		if err == nil {
			r.mu.Lock()
			b, found = r.blobs[dgst]
			r.mu.Unlock()
		}
		if !found {
			rec.Status = registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		r.mu.Lock()
		hold, held := r.hold, r.held
		if held != nil && req.Method == http.MethodGet {
			select {
			case <-held:
			default:
				close(held)
			}
		}
		r.mu.Unlock()
		if hold != nil && req.Method == http.MethodGet {
			select {
			case <-hold:
			case <-req.Context().Done():
				rec.Status = registryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "client went away while held")
				return
			}
		}
	} else {
		rec.Status = registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "unknown path")
		return
	}
	w.Header().Set("Content-Type", b.mediaType)
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(b.data).String())
	w.Header().Set("Content-Length", strconv.Itoa(len(b.data)))
	w.WriteHeader(http.StatusOK)
	rec.Status = http.StatusOK
	if req.Method == http.MethodGet {
		_, _ = w.Write(b.data)
	}
}

// TokenRealm is a token server on loopback for a Registry in token mode
// (the Bearer scheme of the distribution spec): it hands the registry's
// token to callers who present the registry's credentials, by basic auth
// (GET) or as an OAuth2 password grant (POST), and records every request it
// gets, so a test can tell whether a password ever reached it.
type TokenRealm struct {
	// URL is the realm the registry's challenges name
	// ("http://IP:PORT/token").
	URL string

	reg *Registry
	srv *httptest.Server

	mu       sync.Mutex
	requests []TokenRequest
}

// TokenRequest is one request a TokenRealm got, as it arrived.
type TokenRequest struct {
	Method, URL   string
	Authorization string // the raw header
	Body          string // the raw body, up to 64 KiB
	Granted       bool
}

// NewTokenRealm starts a token server listening on ip (a loopback address:
// "127.0.0.1" is the registry's own host, "127.0.0.2" another host) and
// switches reg to token mode: from now on every request to reg needs a
// token from this realm. It stops when t ends.
func NewTokenRealm(t testing.TB, reg *Registry, ip string) *TokenRealm {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	tr := &TokenRealm{reg: reg}
	tr.srv = httptest.NewUnstartedServer(tr)
	tr.srv.Listener.Close()
	tr.srv.Listener = lis
	tr.srv.Start()
	t.Cleanup(tr.srv.Close)
	tr.URL = tr.srv.URL + "/token"
	reg.mu.Lock()
	reg.realm, reg.token = tr.URL, "tok-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	reg.mu.Unlock()
	return tr
}

// NewRedirectRealm starts a server on ip that answers every request with a
// 307 redirect (which keeps a POST's body) to target, and makes it reg's
// token realm; it returns its URL.
func NewRedirectRealm(t testing.TB, reg *Registry, ip, target string) string {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target, http.StatusTemporaryRedirect)
	}))
	srv.Listener.Close()
	srv.Listener = lis
	srv.Start()
	t.Cleanup(srv.Close)
	reg.mu.Lock()
	reg.realm = srv.URL + "/token"
	reg.mu.Unlock()
	return reg.realm
}

// Requests returns the requests the realm got so far.
func (tr *TokenRealm) Requests() []TokenRequest {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]TokenRequest(nil), tr.requests...)
}

// ServeHTTP grants the registry's token for its credentials.
func (tr *TokenRealm) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	rec := TokenRequest{Method: req.Method, URL: req.URL.String(), Authorization: req.Header.Get("Authorization"), Body: string(body)}
	defer func() {
		tr.mu.Lock()
		tr.requests = append(tr.requests, rec)
		tr.mu.Unlock()
	}()
	user, pass, _ := req.BasicAuth()
	if req.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err == nil && form.Get("grant_type") == "password" {
			user, pass = form.Get("username"), form.Get("password")
		}
	}
	r := tr.reg
	if subtle.ConstantTimeCompare([]byte(user), []byte(r.Username)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(r.Password)) != 1 {
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
		return
	}
	rec.Granted = true
	r.mu.Lock()
	token := r.token
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300})
}

// registryError writes an OCI distribution error body and returns status.
func registryError(w http.ResponseWriter, status int, code, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
	return status
}
