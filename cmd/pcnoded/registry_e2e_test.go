package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2ePull runs PullImage and returns every response and the final error.
func e2ePull(t *testing.T, d *daemontest.Daemon, req *pcnodev1.PullImageRequest) ([]*pcnodev1.PullImageResponse, error) {
	t.Helper()
	stream, err := d.Client.Images.PullImage(t.Context(), req)
	if err != nil {
		return nil, client.FromError(err)
	}
	var out []*pcnodev1.PullImageResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, client.FromError(err)
		}
		out = append(out, resp)
	}
}

// e2eLastImage returns the image of the last PullImage response.
func e2eLastImage(resps []*pcnodev1.PullImageResponse) *pcnodev1.Image {
	if len(resps) == 0 {
		return nil
	}
	return resps[len(resps)-1].GetImage()
}

// e2eAuthCounts counts a registry's requests by authorization outcome.
func e2eAuthCounts(r *daemontest.Registry) map[string]int {
	n := map[string]int{}
	for _, q := range r.Requests() {
		n[q.Authorization]++
	}
	return n
}

// TestIntegrationRegistryPull pulls from registries on loopback that want
// basic auth: credentials from the configuration and from a spec work,
// wrong ones give a clear error, and no password ever shows in pcnoded's
// logs, its state directory, task records or API responses.
func TestIntegrationRegistryPull(t *testing.T) {
	const (
		cfgUser, cfgPass   = "pcnode", "cfgPW-6f1d2c9a-secret"
		specUser, specPass = "airflow", "specPW-0b7e5d33-secret"
		wrongPass          = "wrongPW-9a8c7e61-secret"
	)
	secrets := []string{cfgPass, specPass, wrongPass}
	// regCfg's credentials are in pcnoded's configuration; regSpec's come
	// with each spec or request.
	regCfg := daemontest.NewRegistry(t, cfgUser, cfgPass)
	regSpec := daemontest.NewRegistry(t, specUser, specPass)
	built := regCfg.AddImage(t, "pcnode/pctest", "v1", testimage.Image{Name: "pcnode.test/from-registry:v1"})
	regCfg.AddImage(t, "pcnode/pctest", "v2", testimage.Image{Name: "pcnode.test/from-registry:v2"})
	specBuilt := regSpec.AddImage(t, "pcnode/pctest", "v1", testimage.Image{Name: "pcnode.test/from-spec-registry:v1"})
	regSpec.AddImage(t, "pcnode/pctest", "v2", testimage.Image{Name: "pcnode.test/from-spec-registry:v2"})

	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Registries = append(c.Registries,
			config.Registry{Host: regCfg.Host, Username: cfgUser, Password: cfgPass, Insecure: true},
			config.Registry{Host: regSpec.Host, Insecure: true})
	}})
	var responses []proto.Message // every API response, searched for secrets at the end

	t.Run("pull with configured credentials", func(t *testing.T) {
		ref := regCfg.Ref("pcnode/pctest", "v1")
		resps, err := e2ePull(t, d, &pcnodev1.PullImageRequest{Reference: ref})
		for _, r := range resps {
			responses = append(responses, r)
		}
		if err != nil {
			t.Fatalf("PullImage(%s) = %v", ref, err)
		}
		img := e2eLastImage(resps)
		if img.GetName() != ref || img.GetDigest() != built.ManifestDesc.Digest.String() {
			t.Errorf("PullImage(%s) image = %q %q, want %q %q", ref, img.GetName(), img.GetDigest(), ref, built.ManifestDesc.Digest)
		}
		if n := e2eAuthCounts(regCfg); n["ok"] == 0 || n["rejected"] != 0 {
			t.Errorf("registry saw authorizations %v, want some ok and none rejected", n)
		}
		list, err := d.Client.Images.ListImages(t.Context(), &pcnodev1.ListImagesRequest{})
		if err != nil {
			t.Fatalf("ListImages() = %v", client.FromError(err))
		}
		responses = append(responses, list)
		found := false
		for _, i := range list.GetImages() {
			found = found || i.GetName() == ref && i.GetDigest() == img.GetDigest()
		}
		if !found {
			t.Errorf("ListImages() = %v, want %s %s", list.GetImages(), ref, img.GetDigest())
		}
		// The pulled image runs.
		task, events := d.Run(t, e2eSpec(ref, "exit", "CODE=0"))
		responses = append(responses, task)
		for _, ev := range events {
			responses = append(responses, ev)
		}
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if task.GetImageDigest() != built.ManifestDesc.Digest.String() {
			t.Errorf("task image_digest = %q, want %q", task.GetImageDigest(), built.ManifestDesc.Digest)
		}
	})

	t.Run("pull with wrong credentials", func(t *testing.T) {
		ref := regCfg.Ref("pcnode/pctest", "v2")
		before := e2eAuthCounts(regCfg)["rejected"]
		resps, err := e2ePull(t, d, &pcnodev1.PullImageRequest{Reference: ref, Auth: &pcnodev1.RegistryAuth{Username: cfgUser, Password: wrongPass}})
		for _, r := range resps {
			responses = append(responses, r)
		}
		e2eWantClearAuthError(t, "PullImage(wrong password)", err, regCfg.Host, secrets)
		if e2eAuthCounts(regCfg)["rejected"] == before {
			t.Errorf("registry saw no rejected authorization: the wrong password was not tried")
		}
	})

	t.Run("pull without credentials where they are needed", func(t *testing.T) {
		ref := regSpec.Ref("pcnode/pctest", "v1")
		resps, err := e2ePull(t, d, &pcnodev1.PullImageRequest{Reference: ref})
		for _, r := range resps {
			responses = append(responses, r)
		}
		e2eWantClearAuthError(t, "PullImage(no credentials)", err, regSpec.Host, secrets)
	})

	t.Run("task with credentials in its spec", func(t *testing.T) {
		spec := e2eSpec(regSpec.Ref("pcnode/pctest", "v1"), "exit", "CODE=0")
		spec.RegistryAuth = &pcnodev1.RegistryAuth{Username: specUser, Password: specPass}
		task, events := d.Run(t, spec)
		responses = append(responses, task)
		for _, ev := range events {
			responses = append(responses, ev)
		}
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if task.GetImageDigest() != specBuilt.ManifestDesc.Digest.String() {
			t.Errorf("task image_digest = %q, want %q", task.GetImageDigest(), specBuilt.ManifestDesc.Digest)
		}
		if a := task.GetSpec().GetRegistryAuth(); a.GetPassword() != "" {
			t.Errorf("task.spec.registry_auth = %v, want the password removed", a)
		}
	})

	t.Run("task with wrong credentials in its spec", func(t *testing.T) {
		spec := e2eSpec(regSpec.Ref("pcnode/pctest", "v2"), "exit", "CODE=0")
		spec.RegistryAuth = &pcnodev1.RegistryAuth{Username: specUser, Password: wrongPass}
		resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
		if err != nil {
			// Refusing at submit (the template is in the image) is fine
			// if the error is clear.
			e2eWantClearAuthError(t, "SubmitTask(wrong spec password)", client.FromError(err), regSpec.Host, secrets)
			return
		}
		responses = append(responses, resp)
		task := d.WaitTask(t, resp.GetTask().GetId(), 0)
		responses = append(responses, task)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, 0)
		if !strings.Contains(task.GetMessage(), regSpec.Host) {
			t.Errorf("IMAGE_ERROR message = %q, want it to name the registry %s", task.GetMessage(), regSpec.Host)
		}
	})

	t.Run("no secret in task records, responses, logs or state", func(t *testing.T) {
		list, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{})
		if err != nil {
			t.Fatalf("ListTasks() = %v", client.FromError(err))
		}
		responses = append(responses, list)
		for _, task := range list.GetTasks() {
			got, err := d.Client.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: task.GetId()})
			if err != nil {
				t.Fatalf("GetTask(%s) = %v", task.GetId(), client.FromError(err))
			}
			responses = append(responses, got)
		}
		if len(list.GetTasks()) < 2 {
			t.Errorf("ListTasks() = %d tasks, want the tasks of this test", len(list.GetTasks()))
		}
		for _, m := range responses {
			b, _ := proto.Marshal(m)
			txt := prototext.Format(m)
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) || strings.Contains(txt, s) {
					t.Errorf("a %T response contains a password: %s", m, txt)
				}
			}
		}
		logs := d.Logs()
		for _, s := range secrets {
			if i := strings.Index(logs, s); i >= 0 {
				t.Errorf("pcnoded's log contains a password: …%s…", logs[max(0, i-200):min(len(logs), i+50)])
			}
		}
		err = filepath.WalkDir(d.StateDir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("state file %s contains a password", p)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("walk state dir: %v", err)
		}
	})
}

// e2eWantClearAuthError fails t unless err is a permission error that names
// host, says what is wrong with the credentials, and holds no secret.
func e2eWantClearAuthError(t *testing.T, what string, err error, host string, secrets []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s = nil error, want PermissionDenied or Unauthenticated", what)
	}
	if c := client.Code(err); c != codes.PermissionDenied && c != codes.Unauthenticated {
		t.Errorf("%s code = %v (%v), want PermissionDenied or Unauthenticated", what, c, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, host) {
		t.Errorf("%s = %q, want the registry %s named", what, msg, host)
	}
	lower := strings.ToLower(msg)
	if !strings.Contains(lower, "credential") && !strings.Contains(lower, "unauthorized") && !strings.Contains(lower, "authentication") {
		t.Errorf("%s = %q, want it to say the credentials were refused or missing", what, msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s = %q contains a password", what, msg)
		}
	}
}

// TestIntegrationRegistryTokenRealmElsewhere pulls, through the API and as
// a task's image, from a registry whose Bearer challenge names a token
// realm on another host (127.0.0.2) over plain HTTP: the configured
// password never reaches the realm, and both fail with an error naming the
// realm and the registry.
func TestIntegrationRegistryTokenRealmElsewhere(t *testing.T) {
	const user, pass = "pcnode", "realmPW-3e9b1f07-secret"
	reg := daemontest.NewRegistry(t, user, pass)
	reg.AddImage(t, "pcnode/pctest", "v1", testimage.Image{Name: "pcnode.test/realm-elsewhere:v1"})
	realm := daemontest.NewTokenRealm(t, reg, "127.0.0.2")
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Registries = append(c.Registries, config.Registry{Host: reg.Host, Username: user, Password: pass, Insecure: true})
	}})
	ref := reg.Ref("pcnode/pctest", "v1")
	wantRealmError := func(t *testing.T, what, msg string) {
		t.Helper()
		for _, want := range []string{realm.URL, reg.Host, "not sent"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s = %q, want it to name %q", what, msg, want)
			}
		}
		if strings.Contains(msg, pass) {
			t.Errorf("%s = %q holds the password", what, msg)
		}
	}

	_, err := e2ePull(t, d, &pcnodev1.PullImageRequest{Reference: ref})
	if c := client.Code(err); c != codes.PermissionDenied {
		t.Fatalf("PullImage(realm elsewhere) = %v, want PermissionDenied", err)
	}
	wantRealmError(t, "PullImage", err.Error())

	resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: e2eSpec(ref, "exit", "CODE=0")})
	if err != nil {
		wantRealmError(t, "SubmitTask", client.FromError(err).Error())
	} else {
		task := d.WaitTask(t, resp.GetTask().GetId(), 0)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, 0)
		wantRealmError(t, "task message", task.GetMessage())
	}

	if reqs := realm.Requests(); len(reqs) != 0 {
		t.Errorf("the realm on another host got %d requests, want none: %+v", len(reqs), reqs)
	}
	if n := e2eAuthCounts(reg); n["ok"] != 0 {
		t.Errorf("registry served %d authorized requests, want none", n["ok"])
	}
	if strings.Contains(d.Logs(), pass) {
		t.Errorf("pcnoded's log contains the password")
	}
}
