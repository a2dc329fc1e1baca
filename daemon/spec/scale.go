package spec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strings"
)

// SizeFS is the view of the host filesystem that scale rules are measured
// on: names are host paths, Lstat must not follow a final symlink and
// ReadDir entries must report symlinks as such (os.ReadDir does). [OSFS] is
// the real one; tests may pass their own.
type SizeFS interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
}

// OSFS is the host filesystem.
type OSFS struct{}

var _ SizeFS = OSFS{}

// Lstat is os.Lstat.
func (OSFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }

// ReadDir is os.ReadDir.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// compileTargetRegex compiles a target_regex for a match of the whole path,
// as Python's re.fullmatch does.
func compileTargetRegex(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		expr = ".*"
	}
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("does not compile (Go RE2 syntax): %s: %q", se.Code, clip(se.Expr))
		}
		return nil, fmt.Errorf("does not compile (Go RE2 syntax): %w", err)
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("does not compile (Go RE2 syntax): %w", err)
	}
	return re, nil
}

// glob is a target_glob split into segments; "**" matches any number of
// segments. Like Python's Path.rglob it is matched against the end of a
// path, at any depth.
type glob []string

func compileGlob(pattern string) (glob, error) {
	if pattern == "" {
		pattern = "*"
	}
	if strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("%q must be relative", clip(pattern))
	}
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("%q has an empty path segment", clip(pattern))
		}
		if s == "**" {
			continue
		}
		segs[i] = pythonClass(s)
		if _, err := path.Match(segs[i], ""); err != nil {
			return nil, fmt.Errorf("%q is not a valid glob (Go path.Match syntax): %w", clip(pattern), err)
		}
	}
	return glob(segs), nil
}

// pythonClass rewrites fnmatch's negated class "[!...]" as Go's "[^...]".
func pythonClass(s string) string {
	if !strings.Contains(s, "[!") {
		return s
	}
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // skip the escaped byte
		case '[':
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
			}
		}
	}
	return string(b)
}

// match reports whether the glob matches the last segments of rel: as if
// it began with "**", matched against the whole of rel.
//
// The match is a table over (pattern segment, path segment), filled from
// the end, so that it takes len(g)×len(rel) segment matches whatever the
// number of "**" (trying every split, as a recursive matcher does, is
// exponential in it).
func (g glob) match(rel []string) bool {
	n := len(rel)
	// next[j] holds whether g[i+1:] matches rel[j:]; cur is the row of g[i:].
	next := make([]bool, n+1)
	cur := make([]bool, n+1)
	// Below the last pattern segment only the empty rest matches.
	next[n] = true
	for i := len(g) - 1; i >= -1; i-- {
		star := i < 0 || g[i] == "**" // i == -1 is the implied leading "**"
		for j := n; j >= 0; j-- {
			switch {
			case star:
				cur[j] = next[j] || j < n && cur[j+1]
			case j == n:
				cur[j] = false
			default:
				ok, _ := path.Match(g[i], rel[j])
				cur[j] = ok && next[j+1]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// measurer measures one scale rule.
type measurer struct {
	fsys  SizeFS
	re    *regexp.Regexp
	glob  glob
	seen  int
	notes []string // why a target measured 0: missing, not a directory, a symlink
}

// measureRule returns the size the rule measures under the channel root, as
// Kaapana's compute_target_size does, without following symlinks. notes say
// why a target that was expected was not found.
func measureRule(ctx context.Context, fsys SizeFS, root string, rule ScaleRule) (int64, []string, error) {
	re, err := compileTargetRegex(rule.TargetRegex)
	if err != nil {
		return 0, nil, err
	}
	g, err := compileGlob(rule.TargetGlob)
	if err != nil {
		return 0, nil, err
	}
	m := &measurer{fsys: fsys, re: re, glob: g}
	switch rule.Mode {
	case ModeSum, ModeMaxFileSize:
		dir, ok, err := m.dir(root, rule.TargetDir)
		if err != nil || !ok {
			return 0, m.notes, err
		}
		sum, largest, err := m.walk(ctx, dir, "")
		if rule.Mode == ModeSum {
			return sum, m.notes, err
		}
		return largest, m.notes, err
	case ModeMaxItemSum:
		items, ok, err := m.dir(root, "")
		if err != nil || !ok {
			return 0, m.notes, err
		}
		entries, err := fsys.ReadDir(items)
		if err != nil {
			return 0, m.notes, err
		}
		var largest int64
		for _, e := range entries {
			if !e.IsDir() { // files directly under the root are not items; symlinks are not dirs
				continue
			}
			before := len(m.notes)
			dir, ok, err := m.dir(filepath.Join(items, e.Name()), rule.TargetDir)
			m.notes = m.notes[:before] // an item without the target counts 0, as in Kaapana
			if err != nil {
				return 0, m.notes, err
			}
			if !ok {
				continue
			}
			sum, _, err := m.walk(ctx, dir, "")
			if err != nil {
				return 0, m.notes, err
			}
			largest = max(largest, sum)
		}
		return largest, m.notes, nil
	}
	return 0, nil, fmt.Errorf("unknown scale-rule mode %q", rule.Mode)
}

// dir joins root and a relative target, checking every component with
// Lstat: ok is false (with a note) when one is missing, not a directory or a
// symlink.
func (m *measurer) dir(root, target string) (string, bool, error) {
	cur := root
	comps := []string{""}
	if clean := path.Clean("/" + target); clean != "/" {
		comps = append(comps, strings.Split(strings.TrimPrefix(clean, "/"), "/")...)
	}
	for _, c := range comps {
		if c != "" {
			cur = filepath.Join(cur, c)
		}
		fi, err := m.fsys.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			m.notes = append(m.notes, fmt.Sprintf("%s does not exist", cur))
			return "", false, nil
		case err != nil:
			return "", false, err
		case fi.Mode()&fs.ModeSymlink != 0:
			m.notes = append(m.notes, fmt.Sprintf("%s is a symbolic link, which scale rules do not follow", cur))
			return "", false, nil
		case !fi.IsDir():
			m.notes = append(m.notes, fmt.Sprintf("%s is not a directory", cur))
			return "", false, nil
		}
	}
	return cur, true, nil
}

// walk returns the sum and the largest size of the regular files under dir
// that match the glob and the regex; rel is dir's path below the target,
// "/"-separated. Symlinks are neither counted nor descended into.
func (m *measurer) walk(ctx context.Context, dir, rel string) (sum, largest int64, err error) {
	entries, err := m.fsys.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) { // removed while we walked
			return 0, 0, nil
		}
		return 0, 0, err
	}
	for _, e := range entries {
		if m.seen++; m.seen%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		name := e.Name()
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		switch t := e.Type(); {
		case t.IsDir():
			s, l, err := m.walk(ctx, filepath.Join(dir, name), childRel)
			if err != nil {
				return 0, 0, err
			}
			sum, largest = addSat(sum, s), max(largest, l)
		case t.IsRegular():
			if !m.glob.match(strings.Split(childRel, "/")) || !m.re.MatchString(childRel) {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, 0, err
			}
			sum, largest = addSat(sum, fi.Size()), max(largest, fi.Size())
		}
	}
	return sum, largest, nil
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// mulChecked returns a × b for non-negative a and b, and false when the
// product does not fit an int64.
func mulChecked(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a < 0 || b < 0 || a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// applyScale raises memory by one measured rule and reports whether it did.
func applyScale(res *Resources, rule ScaleRule, computed int64) bool {
	target := &res.Limits.MemoryBytes
	if rule.Type == TypeRequest {
		target = &res.Requests.MemoryBytes
	}
	if computed <= *target {
		return false
	}
	*target = computed
	return true
}

// settle makes the final adjustments after scale rules: a memory request
// above the limit raises the limit, and, as in Kubernetes, every request
// left unset takes its limit's value.
func settle(res *Resources) {
	if res.Limits.MemoryBytes != 0 && res.Requests.MemoryBytes > res.Limits.MemoryBytes {
		res.Limits.MemoryBytes = res.Requests.MemoryBytes
	}
	if res.Requests.MemoryBytes == 0 {
		res.Requests.MemoryBytes = res.Limits.MemoryBytes
	}
	if res.Requests.CPUMillis == 0 {
		res.Requests.CPUMillis = res.Limits.CPUMillis
	}
	if res.Requests.GPUs == 0 {
		res.Requests.GPUs = res.Limits.GPUs
	}
}
