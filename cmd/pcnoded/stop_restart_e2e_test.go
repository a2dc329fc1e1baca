package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationCancelSurvivesRestart: a cancel is written to the task
// (stop_request) before CancelTask answers, so a pcnoded killed during the
// grace period and started again stops the re-attached task again with
// what is left of its grace. The task ignores SIGTERM and, left alone,
// would end SUCCEEDED after 25 s; cancelled with a grace of 8 s and
// pcnoded SIGKILLed at once, it must end CANCELLED by SIGKILL (137) when
// its grace ends, never SUCCEEDED. Runs pcnoded without the race detector
// (daemontest.Options.NoRace), whose exit delay in the log driver would add
// a second to the task's end.
func TestIntegrationCancelSurvivesRestart(t *testing.T) {
	const grace = 8 * time.Second
	d := daemontest.Start(t, daemontest.Options{NoRace: true})
	img := e2eTestImage(t, d).GetName()
	task := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=ignore-sigterm -- echo ready -- sleep 25s -- echo finished"))
	id := task.GetId()
	d.WaitLog(t, id, "ready\n", 0)

	resp, took, err := e2eTimedCancel(t, d, id, durationpb.New(grace))
	if err != nil {
		t.Fatalf("CancelTask(grace 8s) = %v", err)
	}
	t.Logf("CancelTask answered in %v: %v %q, stop_request %v", took, resp.GetState(), resp.GetMessage(), resp.GetStopRequest())
	sr := resp.GetStopRequest()
	if sr.GetReason() != pcnodev1.TaskReason_TASK_REASON_CANCELLED || sr.GetGracePeriod().AsDuration() != grace ||
		sr.GetKillTime().AsTime().Sub(sr.GetRequestTime().AsTime()) != grace {
		t.Fatalf("CancelTask answer's stop_request = %v, want CANCELLED with grace 8s and SIGKILL 8s after the request", sr)
	}
	killAt := sr.GetKillTime().AsTime()
	d.WaitLog(t, id, "pctest: SIGTERM ignored", 0)

	d.Kill(t)
	killed := time.Now()
	d.Restart(t)
	t.Logf("pcnoded SIGKILLed %v after the cancel and started again in %v", killed.Sub(sr.GetRequestTime().AsTime()), time.Since(killed))
	if got := d.GetTask(t, id); got.GetStopRequest() == nil {
		t.Errorf("task after the restart has no stop_request, want the cancel kept")
	}

	final := d.WaitTask(t, id, 30*time.Second)
	ended := time.Now()
	t.Logf("task ended %v after its SIGKILL was due: %v/%v exit %d %q", ended.Sub(killAt), final.GetState(), final.GetReason(), final.GetExitCode(), final.GetMessage())
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, 137)
	if final.GetState() == pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("the cancelled task ended SUCCEEDED after the restart")
	}
	if ended.After(killAt.Add(4 * time.Second)) {
		t.Errorf("task ended %v after its grace ended, want within a few seconds of it", ended.Sub(killAt))
	}
	if ft := final.GetFinishTime().AsTime(); ft.Before(killAt.Add(-500 * time.Millisecond)) {
		t.Errorf("task exited at %v, %v before its grace ended: SIGKILL came early", ft, killAt.Sub(ft))
	}
	if !strings.Contains(final.GetMessage(), "grace 8s") {
		t.Errorf("final message %q, want the grace in force (8s) named", final.GetMessage())
	}
	if out := daemontest.Output(d.TaskLogs(t, id), pcnodev1.LogStream_LOG_STREAM_STDOUT); bytes.Contains(out, []byte("finished")) {
		t.Errorf("task stdout %q: it ran to its end, want it killed", out)
	}
}
