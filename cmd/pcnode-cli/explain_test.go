package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/pcnode/pcnode/daemon/config"
)

// configMention is a pcnoded.toml key named in the CLI's text:
// "[api] tcp_address", "[logs] max_file_size or max_files",
// "[[api.roles]] identity and role".
var configMention = regexp.MustCompile(`\[\[?([a-z_.]+)\]\]? ([a-z_]+(?:(?: or | and |/)[a-z_]+)*)`)

// TestHintsNameRealConfigKeys checks every pcnoded.toml key that the CLI's
// messages (hints, notes) name against the daemon's documented default
// configuration, so that a renamed key cannot leave advice that points
// nowhere.
func TestHintsNameRealConfigKeys(t *testing.T) {
	var defaults map[string]any
	if _, err := toml.Decode(config.DefaultTOML, &defaults); err != nil {
		t.Fatalf("decode config.DefaultTOML: %v", err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range configMention.FindAllStringSubmatch(string(src), -1) {
			if m[1] == "pcnode" {
				continue // "[pcnode] …" starts the CLI's own notes among a task's output
			}
			table := lookupTable(defaults, m[1])
			if table == nil {
				t.Errorf("%s names %q: pcnoded.toml has no table [%s]", f, m[0], m[1])
				continue
			}
			for _, key := range regexp.MustCompile(` or | and |/`).Split(m[2], -1) {
				seen++
				if _, ok := table[key]; !ok {
					t.Errorf("%s names %q: [%s] has no key %s (config.DefaultTOML)", f, m[0], m[1], key)
				}
			}
		}
	}
	// explain.go alone names socket, tcp_address, tls_cert_file,
	// client_ca_file, identity and role.
	if seen < 6 {
		t.Errorf("found %d config keys named in the CLI's sources, want at least 6: is the pattern still right?", seen)
	}
}

// lookupTable finds the table at the dotted path in a decoded TOML
// document; for an array of tables ([[api.roles]]) its first element.
func lookupTable(doc map[string]any, path string) map[string]any {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur[part].(type) {
		case map[string]any:
			cur = v
		case []map[string]any:
			if len(v) == 0 {
				return nil
			}
			cur = v[0]
		default:
			return nil
		}
	}
	return cur
}
