package spec

import (
	"errors"
	"testing"
)

func TestSubstituteEnv(t *testing.T) {
	env := MapEnv(map[string]string{"A": "alpha", "dir": "/data", "EMPTY": "", "BRACES": "{{ env.A }}", "Q": `"}`})
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"plain", "plain", nil},
		{"{{ env.A }}", "alpha", nil},
		{"{{env.A}}", "alpha", nil},
		{"{{  env.A  }}", "alpha", nil},
		{"{{\tenv.A\n}}", "alpha", nil},
		{"{{ env.dir }}/x/{{ env.A }}", "/data/x/alpha", nil},
		{"x{{ env.EMPTY }}y", "xy", nil},
		{"{{ env.BRACES }}", "{{ env.A }}", nil}, // substituted values are not rescanned
		{"{{ env.Q }}", `"}`, nil},
		{"}} {", "}} {", nil},
		{"{{ env.MISSING }}", "", ErrMissingEnv},
		{"{{ env.A }}{{ env.MISSING }}", "", ErrMissingEnv},
		{"{{ env.A", "", ErrPlaceholder},
		{"{{ A }}", "", ErrPlaceholder},
		{"{{ env['A'] }}", "", ErrPlaceholder},
		{"{{ env.1A }}", "", ErrPlaceholder},
		{"{{ env.A | upper }}", "", ErrPlaceholder},
		{"{{}}", "", ErrPlaceholder},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SubstituteEnv(tt.in, env)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("SubstituteEnv(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSubstituteEnvNilLookup(t *testing.T) {
	in := "{{ env.A }}/{{env.B}}"
	got, err := SubstituteEnv(in, nil)
	if err != nil || got != in {
		t.Errorf("SubstituteEnv(%q, nil) = %q, %v; want it unchanged", in, got, err)
	}
	if _, err := SubstituteEnv("{{ nope }}", nil); !errors.Is(err, ErrPlaceholder) {
		t.Errorf("SubstituteEnv(%q, nil) = %v, want %v", "{{ nope }}", err, ErrPlaceholder)
	}
}

func TestValidEnvName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"A", true}, {"_", true}, {"a_1", true}, {"TIME_SLEEP", true},
		{"", false}, {"1A", false}, {"A-B", false}, {"A.B", false}, {"Ä", false}, {"A B", false},
	} {
		if got := validEnvName(tt.name); got != tt.want {
			t.Errorf("validEnvName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
