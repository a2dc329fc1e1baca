package outputs

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmptyAndCollectRootUseTheRoot: once a Root is open, renaming its
// directory and planting a symlink to a decoy in its place changes nothing:
// Empty removes what is in the opened directory (symlinks unlinked, not
// followed) and CollectRoot lists it, and the decoy is untouched.
func TestEmptyAndCollectRootUseTheRoot(t *testing.T) {
	b := base(t)
	out := filepath.Join(b, "out")
	decoy := filepath.Join(b, "decoy")
	writeFile(t, filepath.Join(decoy, "keep.txt"), []byte("decoy"))
	writeFile(t, filepath.Join(out, "stale/a.txt"), []byte("stale"))
	symlink(t, decoy, filepath.Join(out, "link-to-decoy"))
	root, err := os.OpenRoot(out)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.Rename(out, out+".moved"); err != nil {
		t.Fatal(err)
	}
	symlink(t, decoy, out)

	if err := Empty(t.Context(), root, out); err != nil {
		t.Fatalf("Empty = %v", err)
	}
	if got := list(t, out+".moved"); len(got) != 0 {
		t.Errorf("opened directory after Empty holds %q, want nothing", got)
	}
	if diff := cmp.Diff([]string{"keep.txt"}, list(t, decoy)); diff != "" {
		t.Errorf("decoy after Empty (-want +got):\n%s", diff)
	}

	if err := root.WriteFile("result.txt", []byte("result"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := CollectRoot(t.Context(), "out", out, root, Options{Workers: 2, MaxFiles: math.MaxInt64, MaxPathBytes: math.MaxInt64})
	if err != nil {
		t.Fatalf("CollectRoot = %v", err)
	}
	if len(m.Files) != 1 || m.Files[0].Path != "result.txt" || m.Files[0].Size != 6 || m.HostPath != out || m.Name != "out" {
		t.Errorf("CollectRoot = %+v, want result.txt (6 bytes) of the opened directory only", m)
	}
}
