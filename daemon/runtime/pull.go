package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/auth"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress reports one piece of content during Pull.
type Progress struct {
	// Ref is the normalised reference being pulled.
	Ref string
	// Digest and MediaType identify the content (manifest, config, layer).
	Digest    string
	MediaType string
	// Status is "waiting", "downloading" or "done".
	Status string
	// Offset is how many bytes are in; Total the content's size (0 when
	// not known yet).
	Offset, Total int64
}

// Progress statuses.
const (
	ProgressWaiting     = "waiting"
	ProgressDownloading = "downloading"
	ProgressDone        = "done"
)

// progressInterval is how often Pull reports download progress.
const progressInterval = 250 * time.Millisecond

// Pull fetches ref from its registry, unpacks it for the configured
// snapshotter and stores it under its normalised name. Credentials come
// from auth when given, else from Config.Registries for the reference's
// host; they are sent to that host only. progress, when not nil, is called
// from one goroutine at a time while the pull runs.
//
// A registry that refuses the credentials (or wants some and none are
// configured) gives ErrUnauthorized; a reference the registry does not
// have gives ErrImageNotFound. Neither error, nor any log line, contains
// the password.
func (c *Containerd) Pull(ctx context.Context, ref string, auth *Auth, progress func(Progress)) (_ Image, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	name, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	host, err := refHost(name)
	if err != nil {
		return Image{}, err
	}
	creds, haveCreds := c.credentials(host, auth)
	secret := creds.Password
	ctx = c.withLibraryLogger(ctx, secret)

	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: c.registryHosts(host, creds, haveCreds)})
	rep := newProgressReporter(name, progress)
	opts := []client.RemoteOpt{
		client.WithResolver(resolver),
		client.WithPullUnpack,
		client.WithPullSnapshotter(c.cfg.Snapshotter),
		client.WithImageHandlerWrapper(rep.wrap),
	}
	stop := rep.poll(ctx, c.client)
	c.log.InfoContext(ctx, "pulling image", "image", name, "registry", host, "credentials", haveCreds)
	img, err := c.client.Pull(ctx, name, opts...)
	stop()
	if err != nil {
		err = c.pullError(name, host, haveCreds, err)
		c.log.WarnContext(ctx, "pull failed", "image", name, "error", redact(err.Error(), secret))
		return Image{}, redactErr(err, secret)
	}
	rep.done(ctx, c.client)
	im, err := c.toImage(ctx, img.Metadata(), true)
	if err != nil {
		return Image{}, redactErr(err, secret)
	}
	c.log.InfoContext(ctx, "image pulled", "image", im.Name, "digest", im.Digest, "size", im.Size)
	return im, nil
}

// pullError turns containerd's pull errors into the package's sentinels.
func (c *Containerd) pullError(name, host string, haveCreds bool, err error) error {
	var status remoteerrors.ErrUnexpectedStatus
	var refused *errRealmRefused
	if errors.As(err, &refused) {
		return fmt.Errorf("pull %s: %w", name, refused)
	}
	unauthorized := errors.Is(err, docker.ErrInvalidAuthorization) ||
		errors.As(err, &status) && (status.StatusCode == http.StatusUnauthorized || status.StatusCode == http.StatusForbidden)
	switch {
	case unauthorized:
		if haveCreds {
			return fmt.Errorf("pull %s: registry %s rejected the credentials: %w", name, host, ErrUnauthorized)
		}
		return fmt.Errorf("pull %s: registry %s requires credentials and none are configured for it: %w", name, host, ErrUnauthorized)
	case errdefs.IsNotImplemented(err) && strings.Contains(err.Error(), "auth scheme"):
		return fmt.Errorf("pull %s: registry %s asks for an unsupported authentication scheme: %w", name, host, ErrUnauthorized)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("pull %s: %w in registry %s", name, ErrImageNotFound, host)
	}
	return fmt.Errorf("pull %s: %w", name, err)
}

// credentials picks the credentials for host: the call's, else the
// configuration's.
func (c *Containerd) credentials(host string, auth *Auth) (Auth, bool) {
	if auth != nil && (auth.Username != "" || auth.Password != "") {
		return *auth, true
	}
	for _, h := range hostAliases(host) {
		if a, ok := c.cfg.Registries[h]; ok {
			return a, true
		}
	}
	return Auth{}, false
}

// registryHosts configures the one host a reference's registry is reached
// at, with HTTPS unless the host is listed as insecure, and credentials
// answered only for that host.
func (c *Containerd) registryHosts(refHost string, creds Auth, haveCreds bool) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		scheme := "https"
		if c.insecure(host) {
			scheme = "http"
		}
		endpoint := host
		if host == "docker.io" {
			endpoint = "registry-1.docker.io"
		}
		httpClient := &http.Client{Transport: docker.DefaultHTTPTransport(nil)}
		credFn := func(reqHost string) (string, string, error) {
			if !haveCreds || (reqHost != endpoint && reqHost != refHost) {
				return "", "", nil
			}
			return creds.Username, creds.Password, nil
		}
		policy := realmPolicy{registry: endpoint, scheme: scheme}
		// Token requests carry the password (a form field, or basic
		// auth): they, and every redirect they follow, must meet the
		// realm policy.
		authClient := &http.Client{Transport: docker.DefaultHTTPTransport(nil)}
		if haveCreds {
			authClient.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				if len(via) >= 10 {
					return errors.New("stopped after 10 redirects")
				}
				return policy.check(req.URL.String())
			}
		}
		authorizer := &realmGuard{
			Authorizer: docker.NewDockerAuthorizer(docker.WithAuthClient(authClient), docker.WithAuthCreds(credFn)),
			policy:     policy,
			creds:      credFn,
		}
		return []docker.RegistryHost{{
			Client:       httpClient,
			Authorizer:   authorizer,
			Host:         endpoint,
			Scheme:       scheme,
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}
}

// realmPolicy says where a registry's credentials may go besides the
// registry itself: to a token realm over HTTPS on any host, or over plain
// HTTP only to the registry's own host name when the registry itself is
// reached over plain HTTP (an insecure registry). A realm over plain HTTP on
// another host, or under an HTTPS registry, would carry the password in
// clear to wherever the challenge pointed.
type realmPolicy struct {
	registry string // host[:port] the registry is reached at
	scheme   string // "https" or "http"
}

// errRealmRefused is the kind of error a refused realm gives; it wraps
// ErrUnauthorized.
type errRealmRefused struct{ registry, realm, why string }

func (e *errRealmRefused) Error() string {
	return fmt.Sprintf("registry %s asks for a token from %q, %s; its credentials go only to the registry host or to a token realm over HTTPS, so they were not sent",
		e.registry, e.realm, e.why)
}

func (e *errRealmRefused) Unwrap() error { return ErrUnauthorized }

// check returns nil when credentials may be sent to realm.
func (p realmPolicy) check(realm string) error {
	shown := truncate(realm, 200)
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" || u.User != nil {
		return &errRealmRefused{registry: p.registry, realm: shown, why: "which is not an absolute URL"}
	}
	switch {
	case strings.EqualFold(u.Scheme, "https"):
		return nil
	case !strings.EqualFold(u.Scheme, "http"):
		return &errRealmRefused{registry: p.registry, realm: shown, why: "whose scheme is neither https nor http"}
	case p.scheme != "http":
		return &errRealmRefused{registry: p.registry, realm: shown, why: "over plain HTTP though the registry is reached over HTTPS"}
	case !strings.EqualFold(u.Hostname(), hostOnly(p.registry)):
		return &errRealmRefused{registry: p.registry, realm: shown, why: "on another host over plain HTTP"}
	}
	return nil
}

// hostOnly strips the port from host[:port].
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// realmGuard is the authorizer a pull uses: containerd's docker
// authorizer, which sends the credentials to whatever realm a Bearer
// challenge names, behind a check of that realm against the policy. A
// challenge answered without credentials (anonymous tokens) is not
// checked: there is nothing to leak.
type realmGuard struct {
	docker.Authorizer
	policy realmPolicy
	creds  func(host string) (string, string, error)
}

func (g *realmGuard) AddResponses(ctx context.Context, responses []*http.Response) error {
	if len(responses) > 0 {
		last := responses[len(responses)-1]
		user, secret, err := g.creds(last.Request.URL.Host)
		if err != nil {
			return err
		}
		if user != "" || secret != "" {
			// The same parser the docker authorizer uses, so both see
			// the same challenges.
			for _, ch := range auth.ParseAuthHeader(last.Header) {
				if ch.Scheme != auth.BearerAuth {
					continue
				}
				if err := g.policy.check(ch.Parameters["realm"]); err != nil {
					return err
				}
			}
		}
	}
	return g.Authorizer.AddResponses(ctx, responses)
}

func (c *Containerd) insecure(host string) bool {
	for _, h := range c.cfg.InsecureRegistries {
		for _, a := range hostAliases(host) {
			if strings.EqualFold(h, a) {
				return true
			}
		}
	}
	return false
}

// hostAliases lists the names a registry host is configured under.
func hostAliases(host string) []string {
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return []string{"docker.io", "registry-1.docker.io", "index.docker.io"}
	}
	return []string{host}
}

// redact replaces every occurrence of secret in s.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// redactErr returns err, or, if its message contains secret, an error with
// the secret replaced that still matches the package's sentinels (but no
// longer unwraps to the original, whose message holds the secret).
func redactErr(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	r := &redactedError{msg: redact(err.Error(), secret)}
	for _, s := range []error{ErrUnauthorized, ErrImageNotFound, ErrInvalidReference, ErrInvalidArgument} {
		if errors.Is(err, s) {
			r.kind = s
			break
		}
	}
	return r
}

type redactedError struct {
	msg  string
	kind error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.kind }

// progressReporter turns what Pull sees into Progress calls.
type progressReporter struct {
	ref string
	fn  func(Progress)

	mu    sync.Mutex
	descs map[string]ocispec.Descriptor
	order []string
}

func newProgressReporter(ref string, fn func(Progress)) *progressReporter {
	return &progressReporter{ref: ref, fn: fn, descs: map[string]ocispec.Descriptor{}}
}

// wrap records every descriptor the pull visits and the children it finds
// (a manifest's layers are fetched by the unpacker, outside the handlers).
func (p *progressReporter) wrap(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		p.seen(desc)
		children, err := h.Handle(ctx, desc)
		for _, ch := range children {
			p.seen(ch)
		}
		return children, err
	})
}

func (p *progressReporter) seen(desc ocispec.Descriptor) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d := desc.Digest.String()
	if _, ok := p.descs[d]; ok {
		return
	}
	p.descs[d] = desc
	p.order = append(p.order, d)
	p.fn(Progress{Ref: p.ref, Digest: d, MediaType: desc.MediaType, Status: ProgressWaiting, Total: desc.Size})
}

// poll reports active downloads from the content store until stop is
// called.
func (p *progressReporter) poll(ctx context.Context, c *client.Client) (stop func()) {
	if p.fn == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			statuses, err := c.ContentStore().ListStatuses(ctx)
			if err != nil {
				continue
			}
			p.mu.Lock()
			for _, st := range statuses {
				// Refs are "<kind>-<digest>" (remotes.MakeRefKey).
				_, d, ok := strings.Cut(st.Ref, "-")
				if !ok {
					continue
				}
				desc, known := p.descs[d]
				if !known {
					continue // another pull's content
				}
				p.fn(Progress{Ref: p.ref, Digest: d, MediaType: desc.MediaType, Status: ProgressDownloading, Offset: st.Offset, Total: st.Total})
			}
			p.mu.Unlock()
		}
	}()
	return func() { cancel(); <-done }
}

// done reports every piece of content seen that is now in the content
// store as complete (an index names other platforms' manifests too).
func (p *progressReporter) done(ctx context.Context, c *client.Client) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.order {
		desc := p.descs[d]
		if _, err := c.ContentStore().Info(ctx, desc.Digest); err != nil {
			continue
		}
		p.fn(Progress{Ref: p.ref, Digest: d, MediaType: desc.MediaType, Status: ProgressDone, Offset: desc.Size, Total: desc.Size})
	}
}
