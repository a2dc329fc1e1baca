package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/daemon/spec"
)

// finding is a problem or warning in the -o json output. File is set only
// when it is not the file being validated (a problem in the --pc file).
type finding struct {
	File        string `json:"file,omitempty"`
	Field       string `json:"field"`
	Description string `json:"description"`
}

// validateReport is validate's result; its JSON form is stable.
type validateReport struct {
	File         string             `json:"file"`
	Kind         schemaKind         `json:"kind"`
	Valid        bool               `json:"valid"`
	Problems     []finding          `json:"problems"`
	Warnings     []finding          `json:"warnings"`
	Placeholders []spec.Placeholder `json:"placeholders"`
}

func newValidateCmd() *cobra.Command {
	var kindFlag, pcPath string
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a processing-container.json or task.json against pcnode's JSON schema and rules",
		Long: "validate checks FILE against pcnode's JSON schema and semantic rules and reports every problem\n" +
			"with the path of the field concerned. The kind of file is detected (templates: a\n" +
			"processing-container.json; taskTemplate or image: a task.json; $defs/$schema with properties:\n" +
			"a JSON Schema, which is checked to compile) unless --schema says it.\n" +
			"With --pc a task is also checked against that processing-container: the template exists,\n" +
			"every channel is bound and only known ones are, env overrides are allowed.\n" +
			"{{ env.NAME }} placeholders are left as they are and listed.\n\n" +
			"Exit status: 0 valid, 1 invalid, 2 usage error.",
		Args: exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := outputFormat(cmd)
			if err != nil {
				return err
			}
			var kind schemaKind
			switch kindFlag {
			case "":
			case string(kindPC), string(kindTask):
				kind = schemaKind(kindFlag)
			default:
				return usagef("--schema must be pc or task, not %s", quote(kindFlag))
			}
			if err := schemas.Ready(); err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if kind == "" {
				if kind = detectKind(data); kind == "" {
					kind = kindTask // report against the task schema; the problems say why
					if pcPath == "" {
						return reportValidate(cmd.OutOrStdout(), format, &validateReport{File: args[0], Problems: []finding{{
							Description: "cannot tell whether this is a processing-container.json (templates), a task.json (taskTemplate, image) or a JSON Schema; use --schema pc|task",
						}}})
					}
				}
			}
			if pcPath != "" && kind != kindTask {
				return usagef("--pc applies to a task.json only")
			}
			if kind == kindJSONSchema {
				return reportValidate(cmd.OutOrStdout(), format, validateJSONSchema(args[0], data))
			}
			rep := validateFile(args[0], data, kind, pcPath)
			return reportValidate(cmd.OutOrStdout(), format, rep)
		},
	}
	cmd.Flags().StringVar(&kindFlag, "schema", "", "kind of FILE: pc (processing-container.json) or task (task.json); detected when absent")
	cmd.Flags().StringVar(&pcPath, "pc", "", "processing-container.json to check a task against")
	return cmd
}

// detectKind tells the formats apart by their required keys.
func detectKind(data []byte) schemaKind {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return ""
	}
	if _, ok := top["templates"]; ok {
		return kindPC
	}
	for _, k := range []string{"taskTemplate", "image"} {
		if _, ok := top[k]; ok {
			return kindTask
		}
	}
	_, defs := top["$defs"]
	_, dialect := top["$schema"]
	if _, props := top["properties"]; props && (defs || dialect) {
		return kindJSONSchema
	}
	return ""
}

// validateJSONSchema checks that a JSON Schema document compiles (draft
// 2020-12 unless it names another dialect).
func validateJSONSchema(path string, data []byte) *validateReport {
	rep := &validateReport{File: path, Kind: kindJSONSchema}
	ps, err := schemas.Check(kindJSONSchema, data)
	if err != nil {
		rep.Problems = append(rep.Problems, finding{Description: err.Error()})
		return rep
	}
	if len(ps) > 0 {
		for _, p := range ps {
			rep.Problems = append(rep.Problems, finding{Field: p.Field, Description: p.Description})
		}
		return rep
	}
	rep.Warnings = append(rep.Warnings, finding{Description: "a JSON Schema, not a processing-container.json or task.json; " +
		"pcnode checks those against its own schemas in daemon/spec/schema (Kaapana's plus env type and adjustable)"})
	return rep
}

// validateFile runs the schema and the semantic checks and merges their
// findings: a schema problem is dropped when the semantic checks report one
// for the same field, which says more.
func validateFile(path string, data []byte, kind schemaKind, pcPath string) *validateReport {
	rep := &validateReport{File: path, Kind: kind}
	schemaProblems, err := schemas.Check(kind, data)
	if err != nil {
		rep.Problems = append(rep.Problems, finding{Description: err.Error()})
		return rep
	}
	var sem []finding
	add := func(file string, ps spec.Problems) {
		for _, p := range ps {
			f := finding{File: file, Field: p.Field, Description: p.Description}
			if !slices.Contains(sem, f) {
				sem = append(sem, f)
			}
		}
	}
	addWarnings := func(file string, ws []spec.Warning) {
		for _, w := range ws {
			rep.Warnings = append(rep.Warnings, finding{File: file, Field: w.Field, Description: w.Description})
		}
	}
	switch kind {
	case kindPC:
		pc, warns, err := spec.ParseProcessingContainer(data)
		addWarnings("", warns)
		add("", problemsOf(err))
		if pc != nil {
			add("", pc.Validate())
		}
	case kindTask:
		t, warns, err := spec.ParseTask(data, nil)
		addWarnings("", warns)
		add("", problemsOf(err))
		if t == nil {
			break
		}
		rep.Placeholders = t.Placeholders
		if pcPath == "" {
			add("", t.Validate())
			break
		}
		pc, pcWarns, pcProblems := loadPC(pcPath)
		addWarnings(pcPath, pcWarns)
		add(pcPath, pcProblems)
		if pc == nil {
			add("", t.Validate())
			break
		}
		// Merge reports the task's problems and those of the template it
		// selects; the latter are the --pc file's.
		inPC := pc.Validate()
		_, mergeWarns, ps := spec.Merge(pc, t)
		addWarnings("", mergeWarns)
		for _, p := range ps {
			file := ""
			if slices.Contains(inPC, p) {
				file = pcPath
			}
			add(file, spec.Problems{p})
		}
	}
	for _, p := range schemaProblems {
		if !slices.ContainsFunc(sem, func(f finding) bool { return f.File == "" && f.Field == p.Field }) {
			sem = append(sem, finding{Field: p.Field, Description: p.Description})
		}
	}
	rep.Problems = sem
	return rep
}

// loadPC reads a --pc file, returning its problems as problems.
func loadPC(path string) (*spec.ProcessingContainer, []spec.Warning, spec.Problems) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, spec.Problems{{Description: err.Error()}}
	}
	pc, warns, err := spec.ParseProcessingContainer(data)
	return pc, warns, problemsOf(err)
}

// problemsOf turns a parse error into problems: Problems as they are, any
// other error (malformed JSON) as one problem for the whole document.
func problemsOf(err error) spec.Problems {
	if err == nil {
		return nil
	}
	var ps spec.Problems
	if errors.As(err, &ps) {
		return ps
	}
	return spec.Problems{{Description: err.Error()}}
}

func reportValidate(w io.Writer, format string, rep *validateReport) error {
	rep.Valid = len(rep.Problems) == 0
	rep.Problems = nonNil(rep.Problems)
	rep.Warnings = nonNil(rep.Warnings)
	rep.Placeholders = nonNil(rep.Placeholders)
	if format == formatJSON {
		if err := writeJSON(w, rep); err != nil {
			return err
		}
	} else {
		writeValidateText(w, rep)
	}
	if !rep.Valid {
		return &reportedError{code: exitInvalid}
	}
	return nil
}

func kindName(k schemaKind) string {
	switch k {
	case kindPC:
		return "processing-container.json"
	case kindTask:
		return "task.json"
	case kindJSONSchema:
		return "JSON Schema"
	}
	return "file"
}

func writeValidateText(w io.Writer, rep *validateReport) {
	if rep.Valid {
		fmt.Fprintf(w, "%s: valid %s\n", rep.File, kindName(rep.Kind))
	} else {
		fmt.Fprintf(w, "%s: invalid %s, %d problem(s):\n", rep.File, kindName(rep.Kind), len(rep.Problems))
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s\n", findingText(p))
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintf(w, "warnings:\n")
		for _, p := range rep.Warnings {
			fmt.Fprintf(w, "  %s\n", findingText(p))
		}
	}
	if len(rep.Placeholders) > 0 {
		fmt.Fprintf(w, "placeholders left as they are (substituted from the environment by resolve and submit):\n")
		for _, p := range rep.Placeholders {
			fmt.Fprintf(w, "  %s: {{ env.%s }}\n", p.Field, p.Variable)
		}
	}
}

func findingText(f finding) string {
	s := f.Description
	if f.Field != "" {
		s = f.Field + ": " + s
	}
	if f.File != "" {
		s = f.File + ": " + s
	}
	return s
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// writeJSON writes v indented.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
