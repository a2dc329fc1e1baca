package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	env := map[string]string{"N": "5", "DIR": "/data/in", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	type parsed struct {
		Name string
		Args []string
	}
	tests := []struct {
		name    string
		args    []string
		want    []parsed
		wantErr string
	}{
		{name: "one step", args: []string{"env"}, want: []parsed{{"env", []string{}}}},
		{name: "sequence", args: []string{"write-stdout", "10", "--", "sleep", "1s", "--", "exit", "3"},
			want: []parsed{{"write-stdout", []string{"10"}}, {"sleep", []string{"1s"}}, {"exit", []string{"3"}}}},
		{name: "expansion", args: []string{"write-file", "${DIR}/f$N", "$N", "--", "echo", "a$$b", "x${EMPTY}y"},
			want: []parsed{{"write-file", []string{"/data/in/f5", "5"}}, {"echo", []string{"a$b", "xy"}}}},
		{name: "echo without words", args: []string{"echo"}, want: []parsed{{"echo", []string{}}}},
		{name: "unknown step", args: []string{"fly"}, wantErr: `step 1: unknown step "fly"`},
		{name: "too few arguments", args: []string{"env", "--", "copy", "/a"}, wantErr: "step 2: copy: got 1 arguments, want 2"},
		{name: "too many arguments", args: []string{"env", "x"}, wantErr: "step 1: env: got 1 arguments, want 0"},
		{name: "bad size", args: []string{"alloc", "12XB"}, wantErr: `step 1: alloc: size "12XB"`},
		{name: "negative size", args: []string{"write-stdout", "-1"}, wantErr: `size "-1"`},
		{name: "bad duration", args: []string{"sleep", "soon"}, wantErr: `duration "soon"`},
		{name: "wait-file", args: []string{"wait-file", "/data/go/now", "30s"}, want: []parsed{{"wait-file", []string{"/data/go/now", "30s"}}}},
		{name: "wait-file bad duration", args: []string{"wait-file", "/data/go/now", "later"}, wantErr: `duration "later"`},
		{name: "bad exit code", args: []string{"exit", "256"}, wantErr: `exit code "256"`},
		{name: "empty step in the middle", args: []string{"env", "--", "--", "env"}, wantErr: "empty step"},
		{name: "trailing separator", args: []string{"env", "--"}, wantErr: "empty step"},
		{name: "unset variable as size", args: []string{"write-stdout", "$UNSET"}, wantErr: `size ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := parse(tt.args, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse(%q) error = %v, want it to contain %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q) = %v", tt.args, err)
			}
			var got []parsed
			for _, s := range steps {
				got = append(got, parsed{s.kind.name, s.args})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1000", 1000, true}, {"2k", 2000, true}, {"3M", 3e6, true}, {"1G", 1e9, true},
		{"1T", 1e12, true}, {"1Ki", 1024, true}, {"64Mi", 64 << 20, true}, {"2Gi", 2 << 30, true}, {"1Ti", 1 << 40, true},
		{"", 0, false}, {"Mi", 0, false}, {"1.5Mi", 0, false}, {"-1", 0, false}, {"1MB", 0, false},
		{"10000000Ti", 0, false}, {"1K", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v, want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true}, {"3", 3 * time.Second, true}, {"0.25", 250 * time.Millisecond, true},
		{"1.5s", 1500 * time.Millisecond, true}, {"2m", 2 * time.Minute, true}, {"forever", forever, true},
		{"", 0, false}, {"-1", 0, false}, {"-1s", 0, false}, {"NaN", 0, false}, {"1e300", 0, false}, {"soon", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v, want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// runInProcess runs argv on a program whose env is env and returns the
// exit status and outputs.
func runInProcess(argv []string, env map[string]string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	p := &program{
		stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return env[k] },
		environ: func() []string {
			var kv []string
			for k, v := range env {
				kv = append(kv, k+"="+v)
			}
			return kv
		},
	}
	code := p.main(argv)
	return code, stdout.String(), stderr.String()
}

func TestMainInProcess(t *testing.T) {
	tests := []struct {
		name       string
		argv       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "env sorted", argv: []string{"/pctest", "env"}, env: map[string]string{"B": "2", "A": "1"},
			wantStdout: "A=1\nB=2\n"},
		{name: "echo then exit", argv: []string{"/pctest", "echo", "a", "b", "--", "exit", "7", "--", "echo", "never"},
			wantCode: 7, wantStdout: "a b\n"},
		{name: "steps from PCTEST_STEPS", argv: []string{"/pctest"}, env: map[string]string{"PCTEST_STEPS": "echo  hi \n -- exit 4", "X": "y"},
			wantCode: 4, wantStdout: "hi\n"},
		{name: "no steps", argv: []string{"/pctest"}, wantCode: exitUsage,
			wantStderr: "pctest: no steps given (arguments or $PCTEST_STEPS); see the package documentation\n"},
		{name: "usage error runs nothing", argv: []string{"/pctest", "echo", "x", "--", "fly"}, wantCode: exitUsage,
			wantStderr: "pctest: step 2: unknown step \"fly\"\n"},
		{name: "failing step", argv: []string{"/pctest", "echo", "before", "--", "cat", "/nonexistent/x", "--", "echo", "after"},
			wantCode: exitStepFailed, wantStdout: "before\n", wantStderr: "pctest: cat: open /nonexistent/x: no such file or directory\n"},
		{name: "write-stdout", argv: []string{"/pctest", "write-stdout", "70"},
			wantStdout: "0000000000 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n000000"},
		{name: "write-stderr", argv: []string{"/pctest", "write-stderr", "11"}, wantStderr: "0000000000 "},
		{name: "python3 unknown script", argv: []string{"/usr/bin/python3", "-u", "train.py"}, wantCode: exitUsage,
			wantStderr: "pctest: python emulation knows upstream.py and downstream.py, not \"train.py\"\n"},
		{name: "upstream bad TIME_SLEEP", argv: []string{"python3", "-u", "upstream.py"}, env: map[string]string{"TIME_SLEEP": "x"},
			wantCode: exitUsage, wantStderr: "upstream: TIME_SLEEP=\"x\": want a non-negative integer\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runInProcess(tt.argv, tt.env)
			if code != tt.wantCode {
				t.Errorf("main(%q) = %d, want %d (stderr %q)", tt.argv, code, tt.wantCode, stderr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("main(%q) stdout = %q, want %q", tt.argv, stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("main(%q) stderr = %q, want %q", tt.argv, stderr, tt.wantStderr)
			}
		})
	}
}

func TestTreeSteps(t *testing.T) {
	src := t.TempDir()
	mustWrite := func(rel, data string, perm os.FileMode) {
		t.Helper()
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), perm); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("a.txt", "hello, World ü\n", 0o644)
	mustWrite("sub/b.sh", "echo x\n", 0o755)
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst, up := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "up")

	code, stdout, stderr := runInProcess([]string{"/pctest", "copy", src, dst, "--", "transform", src, up, "--", "ls", dst}, nil)
	if code != 0 {
		t.Fatalf("copy/transform/ls = %d, stderr %q", code, stderr)
	}
	wantLs := "f 0644 16 " + sha("hello, World ü\n") + " a.txt\n" +
		"l 0777 - - link -> a.txt\n" +
		"d 0755 - - sub/\n" +
		"f 0755 7 " + sha("echo x\n") + " sub/b.sh\n" +
		"total files=2 bytes=23\n"
	if stdout != wantLs {
		t.Errorf("ls after copy =\n%s\nwant\n%s", stdout, wantLs)
	}
	if want := "pctest: transform: skipping " + filepath.Join(src, "link") + " (not a regular file)\n"; stderr != want {
		t.Errorf("transform stderr = %q, want %q", stderr, want)
	}
	for rel, want := range map[string]string{"a.txt": "HELLO, WORLD ü\n", "sub/b.sh": "ECHO X\n"} {
		got, err := os.ReadFile(filepath.Join(up, rel))
		if err != nil || string(got) != want {
			t.Errorf("transformed %s = %q, %v, want %q", rel, got, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(up, "link")); !os.IsNotExist(err) {
		t.Errorf("transform copied the symlink: Lstat = %v", err)
	}
}

func TestUpstreamDownstream(t *testing.T) {
	root := t.TempDir()
	env := map[string]string{"PCTEST_DUMMY_ROOT": root, "DUMMY": "dummy", "TIME_SLEEP": "0"}
	code, stdout, stderr := runInProcess([]string{"python3", "-u", "upstream.py"}, env)
	if code != 0 {
		t.Fatalf("upstream = %d, stderr %q", code, stderr)
	}
	wantUp := "upstream: DUMMY=dummy\n" +
		"upstream: wrote channel1/result-1.txt (1000 bytes)\n" +
		"upstream: wrote channel1/nested/result-2.txt (5000 bytes)\n" +
		"upstream: wrote channel1/notes.log (300 bytes)\n" +
		"upstream: wrote channel2/data.bin (4096 bytes)\n" +
		"upstream: done\n"
	if stdout != wantUp {
		t.Errorf("upstream stdout =\n%s\nwant\n%s", stdout, wantUp)
	}
	// The downstream side sees upstream's channels.
	if err := os.Rename(filepath.Join(root, "home", "upstream"), filepath.Join(root, "home", "downstream")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runInProcess([]string{"python3", "downstream.py"}, env)
	if code != 0 {
		t.Fatalf("downstream = %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "channel1/nested/result-2.txt size=5000 sha256=") ||
		!strings.Contains(stdout, "downstream: channel1 files=3 bytes=6300\n") ||
		!strings.Contains(stdout, "downstream: channel2 files=1 bytes=4096\n") {
		t.Errorf("downstream stdout = %q", stdout)
	}
	if err := os.Remove(filepath.Join(root, "home", "downstream", "channel2", "data.bin")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runInProcess([]string{"python3", "downstream.py"}, env)
	if code != exitStepFailed || stderr != "downstream: channel2 is empty\n" {
		t.Errorf("downstream with empty channel2 = %d, stderr %q; want %d, \"downstream: channel2 is empty\\n\"", code, stderr, exitStepFailed)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestWaitFile(t *testing.T) {
	dir := t.TempDir()
	p := &program{}
	if err := p.waitFile([]string{filepath.Join(dir, "never"), "0.1"}); err == nil || !strings.Contains(err.Error(), "did not appear within 0.1") {
		t.Errorf("wait-file of a missing file = %v, want an error after its duration", err)
	}
	path := filepath.Join(dir, "soon")
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = os.WriteFile(path, nil, 0o644)
	}()
	start := time.Now()
	if err := p.waitFile([]string{path, "10s"}); err != nil {
		t.Fatalf("wait-file of a file made after 100 ms = %v", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("wait-file returned after %v, want soon after the file appeared (100 ms)", took)
	}
}
