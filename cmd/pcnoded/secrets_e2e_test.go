package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eSecretValue is a value no file of the test can hold by accident.
func e2eSecretValue(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// TestIntegrationSecret: a spec names a node secret; the container sees
// its content (read when the container is created, so a replaced file is a
// rotation), while the task records in pcnode.db, GetTask, ListTasks,
// WatchTasks, ResolveTask and pcnoded's log carry only its name. A secret
// that is missing at submit is FAILED_PRECONDITION at spec.env[N].secret;
// one removed before the container is created fails the task, saying so.
func TestIntegrationSecret(t *testing.T) {
	secretsDir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(secretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	first, rotated := e2eSecretValue(t, "first"), e2eSecretValue(t, "rotated")
	values := []string{first, rotated}
	put := func(name, v string) {
		t.Helper()
		tmp := filepath.Join(secretsDir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(secretsDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	put("project-password", first)
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Secrets.Dir = secretsDir
		c.Resources.MaxConcurrent = 1
	}})
	img := e2eTestImage(t, d).GetName()
	labels := map[string]string{"e2e": "secret"}
	spec := func(secret string) *pcnodev1.TaskSpec {
		s := e2eSpec(img, "steps", "PCTEST_STEPS=echo password=${PROJECT_PASSWORD}")
		s.Env = append(s.Env, &pcnodev1.EnvVar{Name: "PROJECT_PASSWORD", Secret: secret})
		s.Labels = labels
		return s
	}
	var responses []proto.Message // searched for the values at the end
	var printed []string          // tasks whose own log holds a value
	watch := e2eWatch(t, d, labels)

	runSees := func(want string) {
		t.Helper()
		task := d.Submit(t, spec("project-password"))
		responses = append(responses, task)
		final := d.WaitTask(t, task.GetId(), 30*time.Second)
		e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		out := string(daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT))
		if out != "password="+want+"\n" {
			t.Errorf("the container printed %q, want the secret's content %q", out, "password="+want+"\n")
		}
		for _, ev := range watch(task.GetId()) {
			responses = append(responses, ev)
		}
		got := d.GetTask(t, task.GetId())
		responses = append(responses, got)
		env := got.GetInstance().GetEnv()
		if i := len(env) - 1; i < 0 || env[i].GetName() != "PROJECT_PASSWORD" || env[i].GetSecret() != "project-password" || env[i].GetValue() != "" {
			t.Errorf("stored instance env = %v, want PROJECT_PASSWORD naming secret project-password with no value", env)
		}
		printed = append(printed, task.GetId())
	}
	runSees(first)
	put("project-password", rotated) // rotation: the next container sees the new value
	runSees(rotated)

	res, err := d.Client.Tasks.ResolveTask(t.Context(), &pcnodev1.ResolveTaskRequest{Spec: spec("project-password")})
	if err != nil || len(res.GetProblems()) != 0 {
		t.Errorf("ResolveTask(secret) = %v, %v; want an instance", res.GetProblems(), client.FromError(err))
	}
	responses = append(responses, res)

	t.Run("missing at submit", func(t *testing.T) {
		_, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("no-such-secret")})
		msg := e2eWantCode(t, "SubmitTask(missing secret)", err, codes.FailedPrecondition)
		var ce *client.Error
		if !errors.As(client.FromError(err), &ce) {
			t.Fatalf("SubmitTask(missing secret) = %v, want a refusal", err)
		}
		fv := ce.Violations
		if len(fv) != 1 || fv[0].GetField() != "spec.env[1].secret" || !strings.Contains(fv[0].GetDescription(), "no-such-secret") {
			t.Errorf("SubmitTask(missing secret) violations = %v (%s), want one at spec.env[1].secret naming the secret", fv, msg)
		}
		_, err = d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("../etc/shadow")})
		e2eWantCode(t, "SubmitTask(secret ../etc/shadow)", err, codes.InvalidArgument)
	})

	t.Run("removed before the container is created", func(t *testing.T) {
		put("short-lived", "gone-before-start")
		blocker := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=echo ready -- sleep 60s"))
		d.WaitLog(t, blocker.GetId(), "ready\n", 0)
		queued := d.Submit(t, spec("short-lived")) // max_concurrent = 1: it waits
		if err := os.Remove(filepath.Join(secretsDir, "short-lived")); err != nil {
			t.Fatal(err)
		}
		e2eCancel(t, d, blocker.GetId(), time.Second)
		final := d.WaitTask(t, queued.GetId(), 30*time.Second)
		if final.GetState() != pcnodev1.TaskState_TASK_STATE_FAILED || final.GetReason() != pcnodev1.TaskReason_TASK_REASON_START_ERROR ||
			!strings.Contains(final.GetMessage(), `secret "short-lived"`) || !strings.Contains(final.GetMessage(), "PROJECT_PASSWORD") {
			t.Errorf("task whose secret was removed = %v/%v %q, want FAILED/START_ERROR naming the variable and the secret",
				final.GetState(), final.GetReason(), final.GetMessage())
		}
	})

	list := e2eListAll(t, d, &pcnodev1.ListTasksRequest{Labels: labels})
	if len(list) < 3 {
		t.Errorf("ListTasks(labels) = %d tasks, want the tasks of this test", len(list))
	}
	for _, task := range list {
		responses = append(responses, task)
	}
	for _, m := range responses {
		b, _ := proto.Marshal(m)
		txt := prototext.Format(m)
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) || strings.Contains(txt, v) {
				t.Errorf("a %T response contains the secret's content: %s", m, txt)
			}
		}
	}
	if logs := d.Logs(); strings.Contains(logs, first) || strings.Contains(logs, rotated) {
		t.Errorf("pcnoded's log contains the secret's content")
	}
	// Every state file but the printing tasks' own container logs: the task
	// records in pcnode.db above all.
	sawDB := false
	err = filepath.WalkDir(d.StateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, id := range printed {
			if e.IsDir() && e.Name() == id {
				return filepath.SkipDir
			}
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sawDB = sawDB || e.Name() == "pcnode.db"
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("state file %s contains the secret's content", p)
			}
		}
		return nil
	})
	if err != nil || !sawDB {
		t.Errorf("walking %s: %v (pcnode.db seen: %v)", d.StateDir, err, sawDB)
	}
}
