package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
)

func TestIntegrationPull(t *testing.T) {
	const (
		user     = "pcnode"
		password = "Corr3ct-Horse-Battery"
		wrong    = "Wr0ng-Staple-Guess"
		repo     = "pcnode/pulled"
	)
	reg := daemontest.NewRegistry(t, user, password)
	built := reg.AddImage(t, repo, "v1", testimage.Image{Name: "pcnode.test/rt-pull-src:1"})
	manifest := built.ManifestDesc.Digest.String()
	host := reg.Host
	ref := host + "/" + repo + ":v1"

	var logs lockedBuffer
	configured := newRuntime(t, Config{
		InsecureRegistries: []string{host},
		Registries:         map[string]Auth{host: {Username: user, Password: password}},
	}, &logs)
	bare := newRuntime(t, Config{InsecureRegistries: []string{host}}, &logs)
	secure := newRuntime(t, Config{Registries: map[string]Auth{host: {Username: user, Password: password}}}, &logs)
	ctx := t.Context()

	var (
		mu       sync.Mutex
		progress []Progress
	)
	img, err := configured.Pull(ctx, ref, nil, func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, p)
	})
	if err != nil {
		t.Fatalf("Pull(%q) with configured credentials = %v", ref, err)
	}
	if img.Name != ref || img.Digest != manifest || img.Size <= 0 {
		t.Fatalf("Pull(%q) = %+v, want digest %s", ref, img, manifest)
	}
	done := map[string]bool{}
	for _, p := range progress {
		if p.Ref != ref {
			t.Errorf("progress %+v for another ref", p)
		}
		if p.Status == ProgressDone {
			done[p.Digest] = true
		}
	}
	if !done[manifest] || len(done) < 3 {
		t.Errorf("progress %+v: want manifest, config and layer done", progress)
	}
	data, dgst, err := configured.ReadImageFile(ctx, ref, "/processing-container.json", 1<<20)
	if err != nil || dgst != img.Digest || string(data) != string(testimage.DefaultProcessingContainer()) {
		t.Fatalf("ReadImageFile(pulled) = %d bytes, %q, %v", len(data), dgst, err)
	}
	if err := configured.RemoveImage(ctx, ref); err != nil {
		t.Fatal(err)
	}

	t.Run("credentials in the call", func(t *testing.T) {
		img, err := bare.Pull(ctx, ref, &Auth{Username: user, Password: password}, nil)
		if err != nil || img.Digest != manifest {
			t.Fatalf("Pull(%q, call auth) = %+v, %v", ref, img, err)
		}
		if err := bare.RemoveImage(ctx, ref); err != nil {
			t.Fatal(err)
		}
	})

	var errs []error
	t.Run("wrong credentials", func(t *testing.T) {
		_, err := bare.Pull(ctx, ref, &Auth{Username: user, Password: wrong}, nil)
		errs = append(errs, err)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "rejected the credentials") {
			t.Fatalf("Pull(wrong password) = %v, want ErrUnauthorized saying the credentials were rejected", err)
		}
		// The configured credentials are not tried behind the caller's back.
		_, err = configured.Pull(ctx, ref, &Auth{Username: user, Password: wrong}, nil)
		errs = append(errs, err)
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Pull(wrong call password over configured) = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		_, err := bare.Pull(ctx, ref, nil, nil)
		errs = append(errs, err)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "none are configured") {
			t.Fatalf("Pull(no credentials) = %v, want ErrUnauthorized saying none are configured", err)
		}
	})
	t.Run("missing image", func(t *testing.T) {
		_, err := configured.Pull(ctx, host+"/"+repo+":absent", nil, nil)
		errs = append(errs, err)
		if !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("Pull(absent tag) = %v, want ErrImageNotFound", err)
		}
		_, err = configured.Pull(ctx, host+"/other/repo:v1", nil, nil)
		errs = append(errs, err)
		if !errors.Is(err, ErrImageNotFound) {
			t.Fatalf("Pull(absent repository) = %v, want ErrImageNotFound", err)
		}
	})
	t.Run("https unless insecure", func(t *testing.T) {
		before := len(reg.Requests())
		_, err := secure.Pull(ctx, ref, nil, nil)
		errs = append(errs, err)
		if err == nil {
			t.Fatal("Pull over HTTPS from a plain HTTP registry succeeded")
		}
		if n := len(reg.Requests()) - before; n != 0 {
			t.Fatalf("registry saw %d plain HTTP requests from a client not configured insecure", n)
		}
	})
	t.Run("invalid reference", func(t *testing.T) {
		_, err := configured.Pull(ctx, "Not A Ref", nil, nil)
		if !errors.Is(err, ErrInvalidReference) {
			t.Fatalf("Pull(invalid) = %v, want ErrInvalidReference", err)
		}
	})

	for _, err := range errs {
		for _, secret := range []string{password, wrong} {
			if err != nil && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), secret) {
				t.Errorf("error %q contains a password", err)
			}
		}
	}
	for _, secret := range []string{password, wrong} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain a password:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "pull failed") {
		t.Errorf("logs lack the failed pulls:\n%s", logs.String())
	}
}

// TestIntegrationPullTokenRealm pulls from registries whose Bearer
// challenges name a token realm: on the registry's own host (allowed, the
// realm gets the credentials), on another host over plain HTTP (refused:
// the realm never hears of the password), and on the registry's host but
// redirecting to another host (refused at the redirect).
func TestIntegrationPullTokenRealm(t *testing.T) {
	const (
		user     = "pcnode"
		password = "Realm-Pa55word-7c1e"
		repo     = "pcnode/pulled"
	)
	ctx := t.Context()
	newPull := func(t *testing.T, reg *daemontest.Registry) *Containerd {
		return newRuntime(t, Config{
			InsecureRegistries: []string{reg.Host},
			Registries:         map[string]Auth{reg.Host: {Username: user, Password: password}},
		}, nil)
	}
	noSecret := func(t *testing.T, realm *daemontest.TokenRealm) {
		t.Helper()
		for _, q := range realm.Requests() {
			if strings.Contains(q.URL+q.Authorization+q.Body, password) || strings.HasPrefix(q.Authorization, "Basic") {
				t.Errorf("realm %s got the credentials: %+v", realm.URL, q)
			}
		}
	}

	t.Run("realm on the registry host", func(t *testing.T) {
		reg := daemontest.NewRegistry(t, user, password)
		reg.AddImage(t, repo, "v1", testimage.Image{Name: "pcnode.test/rt-realm-same:1"})
		realm := daemontest.NewTokenRealm(t, reg, "127.0.0.1")
		c := newPull(t, reg)
		if _, err := c.Pull(ctx, reg.Ref(repo, "v1"), nil, nil); err != nil {
			t.Fatalf("Pull(realm on the registry host) = %v", err)
		}
		granted := 0
		for _, q := range realm.Requests() {
			if q.Granted {
				granted++
			}
		}
		if granted == 0 {
			t.Fatalf("realm requests %+v: want a token granted for the credentials", realm.Requests())
		}
	})
	t.Run("realm on another host over http", func(t *testing.T) {
		reg := daemontest.NewRegistry(t, user, password)
		reg.AddImage(t, repo, "v1", testimage.Image{Name: "pcnode.test/rt-realm-other:1"})
		realm := daemontest.NewTokenRealm(t, reg, "127.0.0.2")
		c := newPull(t, reg)
		_, err := c.Pull(ctx, reg.Ref(repo, "v1"), nil, nil)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), realm.URL) || !strings.Contains(err.Error(), reg.Host) ||
			!strings.Contains(err.Error(), "not sent") {
			t.Fatalf("Pull(realm on another host) = %v, want ErrUnauthorized naming realm %s and registry %s", err, realm.URL, reg.Host)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("error %q holds the password", err)
		}
		if n := len(realm.Requests()); n != 0 {
			t.Errorf("realm on another host got %d requests, want none", n)
		}
		noSecret(t, realm)
	})
	t.Run("realm redirecting to another host", func(t *testing.T) {
		reg := daemontest.NewRegistry(t, user, password)
		reg.AddImage(t, repo, "v1", testimage.Image{Name: "pcnode.test/rt-realm-redirect:1"})
		far := daemontest.NewTokenRealm(t, reg, "127.0.0.2")
		near := daemontest.NewRedirectRealm(t, reg, "127.0.0.1", far.URL)
		c := newPull(t, reg)
		_, err := c.Pull(ctx, reg.Ref(repo, "v1"), nil, nil)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), far.URL) {
			t.Fatalf("Pull(realm %s redirecting to %s) = %v, want ErrUnauthorized naming %s", near, far.URL, err, far.URL)
		}
		if n := len(far.Requests()); n != 0 {
			t.Errorf("redirect target got %d requests, want none", n)
		}
		noSecret(t, far)
	})
}
