package spec_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/spec/schema"
	"github.com/pcnode/pcnode/daemon/specpb"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// envAliases are Kaapana's Python spellings of the env types, with the
// canonical type each means, a good value and a bad one.
var envAliases = []struct {
	alias, canonical string
	want             pcnodev1.EnvVarType
	good, bad        string
}{
	{"str", "string", pcnodev1.EnvVarType_ENV_VAR_TYPE_STRING, "anything", ""},
	{"int", "integer", pcnodev1.EnvVarType_ENV_VAR_TYPE_INTEGER, "-12", "abc"},
	{"float", "number", pcnodev1.EnvVarType_ENV_VAR_TYPE_NUMBER, "1.5e3", "1,5"},
	{"bool", "boolean", pcnodev1.EnvVarType_ENV_VAR_TYPE_BOOLEAN, "true", "True"},
}

func aliasPC(typ, value string) []byte {
	return fmt.Appendf(nil, `{"name": "aliases", "description": "d", "api_version": 1, "templates": [
		{"identifier": "t", "description": "d", "inputs": [], "outputs": [],
		 "env": [{"name": "V", "value": %q, "type": %q}]}]}`, value, typ)
}

// TestEnvTypeAliases: a processing-container.json whose env type is spelled
// the Python way validates (schema and Go), resolves to the canonical type
// in Go and in the v1 API, and its value is checked as the canonical type's.
func TestEnvTypeAliases(t *testing.T) {
	for _, a := range envAliases {
		t.Run(a.alias, func(t *testing.T) {
			data := aliasPC(a.alias, a.good)
			if ps, err := schema.Validate(schema.ProcessingContainer, data); err != nil || len(ps) != 0 {
				t.Fatalf("schema.Validate(type %q) = %v, %v; want valid", a.alias, ps, err)
			}
			pc, _, err := spec.ParseProcessingContainer(data)
			if err != nil {
				t.Fatalf("ParseProcessingContainer(type %q) = %v", a.alias, err)
			}
			if ps := pc.Validate(); len(ps) != 0 {
				t.Fatalf("Validate(type %q) = %v, want no problems", a.alias, ps)
			}
			if got := pc.Templates[0].Env[0].Type; string(got) != a.canonical {
				t.Errorf("parsed type %q = %q, want %q", a.alias, got, a.canonical)
			}
			if got := specpb.ProcessingContainer(pc).GetTemplates()[0].GetEnv()[0].GetType(); got != a.want {
				t.Errorf("API type of %q = %v, want %v", a.alias, got, a.want)
			}
			// A template built in Go with the alias itself is the same type.
			if got := spec.EnvType(a.alias).Canonical(); string(got) != a.canonical {
				t.Errorf("EnvType(%q).Canonical() = %q, want %q", a.alias, got, a.canonical)
			}
			if a.bad == "" {
				return // every string is a str
			}
			pc, _, err = spec.ParseProcessingContainer(aliasPC(a.alias, a.bad))
			if err != nil {
				t.Fatal(err)
			}
			ps := pc.Validate()
			if !slices.ContainsFunc(ps, func(p spec.Problem) bool { return p.Field == "templates[0].env[0].value" }) {
				t.Errorf("Validate(type %q, value %q) = %v, want a problem at templates[0].env[0].value", a.alias, a.bad, ps)
			}
			// Same verdict as the canonical spelling, word for word.
			canon, _, err := spec.ParseProcessingContainer(aliasPC(a.canonical, a.bad))
			if err != nil {
				t.Fatal(err)
			}
			want := canon.Validate()
			if fmt.Sprint(ps) != fmt.Sprint(want) {
				t.Errorf("Validate(type %q, value %q) = %v, want what %q gives: %v", a.alias, a.bad, ps, a.canonical, want)
			}
			// Set directly in Go, unparsed, the alias is checked the same way.
			pc.Templates[0].Env[0].Type = spec.EnvType(a.alias)
			if got := pc.Validate(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Validate(Go type %q, value %q) = %v, want %v", a.alias, a.bad, got, want)
			}
		})
	}
}

// TestEnvTypeAliasInTask: a task's override of an "int" variable is checked
// as an integer, and an inline template may spell the type the Python way.
func TestEnvTypeAliasInTask(t *testing.T) {
	pc, _, err := spec.ParseProcessingContainer(aliasPC("int", "5"))
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := spec.ParseTask([]byte(`{"name": "n", "image": "img", "taskTemplate": "t", "inputs": [], "outputs": [],
		"env": [{"name": "V", "value": "abc"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, ps := spec.Merge(pc, task)
	if !slices.ContainsFunc(ps, func(p spec.Problem) bool { return p.Field == "env[0].value" }) {
		t.Errorf("Merge(int variable, override %q) = %v, want a problem at env[0].value", "abc", ps)
	}
	inline := []byte(`{"name": "n", "image": "img", "inputs": [], "outputs": [],
		"taskTemplate": {"identifier": "t", "description": "d", "inputs": [], "outputs": [],
		 "env": [{"name": "V", "value": "x", "type": "bool"}]}}`)
	// The schema knows the spelling; it cannot check a value against a type.
	if ps, err := schema.Validate(schema.Task, inline); err != nil || len(ps) != 0 {
		t.Errorf("schema.Validate(inline template, type bool) = %v, %v; want valid", ps, err)
	}
	task, _, err = spec.ParseTask(inline, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps = task.Validate()
	if !slices.ContainsFunc(ps, func(p spec.Problem) bool { return p.Field == "taskTemplate.env[0].value" }) {
		t.Errorf("Validate(inline template, bool variable %q) = %v, want a problem at taskTemplate.env[0].value", "x", ps)
	}
}
