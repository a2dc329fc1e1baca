package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// stepKind describes one step name: how many arguments it takes, how they
// are checked before anything runs, and what it does.
type stepKind struct {
	name             string
	minArgs, maxArgs int // maxArgs < 0: unlimited
	check            func(args []string) error
	run              func(p *program, args []string) error
}

// step is a parsed step with its expanded arguments.
type step struct {
	kind *stepKind
	args []string
}

var stepKinds map[string]*stepKind

func init() {
	kinds := []*stepKind{
		{name: "env", run: (*program).env},
		{name: "echo", maxArgs: -1, run: (*program).echo},
		{name: "id", run: (*program).id},
		{name: "cat", minArgs: 1, maxArgs: 1, run: (*program).cat},
		{name: "ls", minArgs: 1, maxArgs: 1, run: (*program).ls},
		{name: "copy", minArgs: 2, maxArgs: 2, run: (*program).copyTree},
		{name: "transform", minArgs: 2, maxArgs: 2, run: (*program).transform},
		{name: "write-stdout", minArgs: 1, maxArgs: 1, check: checkSizeAt(0), run: (*program).writeStdout},
		{name: "write-stderr", minArgs: 1, maxArgs: 1, check: checkSizeAt(0), run: (*program).writeStderr},
		{name: "write-file", minArgs: 2, maxArgs: 2, check: checkSizeAt(1), run: (*program).writeFile},
		{name: "alloc", minArgs: 1, maxArgs: 1, check: checkSizeAt(0), run: (*program).alloc},
		{name: "spin", minArgs: 1, maxArgs: 1, check: checkDuration, run: (*program).spin},
		{name: "sleep", minArgs: 1, maxArgs: 1, check: checkDuration, run: (*program).sleep},
		{name: "wait-file", minArgs: 2, maxArgs: 2, check: checkDurationAt(1), run: (*program).waitFile},
		{name: "ignore-sigterm", run: (*program).ignoreSIGTERM},
		{name: "exit", minArgs: 1, maxArgs: 1, check: checkExitCode, run: (*program).exit},
	}
	kinds = append(kinds, privilegeKinds()...)
	stepKinds = make(map[string]*stepKind, len(kinds))
	for _, k := range kinds {
		stepKinds[k.name] = k
	}
}

// parse splits args on "--" into steps, expands $NAME references with
// getenv, and checks every step before any runs.
func parse(args []string, getenv func(string) string) ([]step, error) {
	var steps []step
	var cur []string
	flush := func() error {
		if len(cur) == 0 {
			return errors.New("empty step (two \"--\" in a row, or \"--\" at an end)")
		}
		s, err := parseStep(cur, getenv)
		if err != nil {
			return fmt.Errorf("step %d: %w", len(steps)+1, err)
		}
		steps = append(steps, s)
		cur = nil
		return nil
	}
	for _, a := range args {
		if a == "--" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur = append(cur, a)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return steps, nil
}

func parseStep(words []string, getenv func(string) string) (step, error) {
	expanded := make([]string, len(words))
	for i, w := range words {
		expanded[i] = expand(w, getenv)
	}
	kind, ok := stepKinds[expanded[0]]
	if !ok {
		return step{}, fmt.Errorf("unknown step %q", expanded[0])
	}
	args := expanded[1:]
	if len(args) < kind.minArgs || (kind.maxArgs >= 0 && len(args) > kind.maxArgs) {
		return step{}, fmt.Errorf("%s: got %d arguments, want %s", kind.name, len(args), arity(kind))
	}
	if kind.check != nil {
		if err := kind.check(args); err != nil {
			return step{}, fmt.Errorf("%s: %w", kind.name, err)
		}
	}
	return step{kind: kind, args: args}, nil
}

func arity(k *stepKind) string {
	switch {
	case k.maxArgs < 0:
		return fmt.Sprintf("at least %d", k.minArgs)
	case k.minArgs == k.maxArgs:
		return strconv.Itoa(k.minArgs)
	default:
		return fmt.Sprintf("%d to %d", k.minArgs, k.maxArgs)
	}
}

// expand replaces $NAME and ${NAME} with getenv(NAME); "$$" is "$".
func expand(s string, getenv func(string) string) string {
	return os.Expand(s, func(name string) string {
		if name == "$" {
			return "$"
		}
		return getenv(name)
	})
}

var sizeSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// parseSize parses a byte count such as "1000", "64Mi" or "2G".
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, sf := range sizeSuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			num, mult = strings.TrimSuffix(s, sf.suffix), sf.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a non-negative integer with an optional k, M, G, T, Ki, Mi, Gi or Ti suffix", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

func checkSizeAt(i int) func([]string) error {
	return func(args []string) error {
		_, err := parseSize(args[i])
		return err
	}
}

// forever is the DURATION "forever": long enough for any test.
const forever = time.Duration(math.MaxInt64)

// parseDuration parses a Go duration, a bare number of seconds, or "forever".
func parseDuration(s string) (time.Duration, error) {
	if s == "forever" {
		return forever, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("duration %q: want a Go duration, a non-negative number of seconds, or \"forever\"", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func checkDuration(args []string) error {
	_, err := parseDuration(args[0])
	return err
}

func checkDurationAt(i int) func([]string) error {
	return func(args []string) error {
		_, err := parseDuration(args[i])
		return err
	}
}

func parseExitCode(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("exit code %q: want an integer from 0 to 255", s)
	}
	return n, nil
}

func checkExitCode(args []string) error {
	_, err := parseExitCode(args[0])
	return err
}
