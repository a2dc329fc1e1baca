package schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/pcnode/pcnode/daemon/spec"
)

// The schema documents, as published in the repository.
var (
	//go:embed processing-container.schema.json
	ProcessingContainerJSON []byte
	//go:embed task.schema.json
	TaskJSON []byte
)

// Kind names one of the two file formats.
type Kind string

// The two formats; their values are pcnode-cli validate's --schema words.
const (
	ProcessingContainer Kind = "pc"
	Task                Kind = "task"
)

// URLs are the schemas' $id values.
const (
	ProcessingContainerURL = "https://github.com/pcnode/pcnode/daemon/spec/schema/processing-container.schema.json"
	TaskURL                = "https://github.com/pcnode/pcnode/daemon/spec/schema/task.schema.json"
)

var compiled = sync.OnceValues(func() (map[Kind]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	out := map[Kind]*jsonschema.Schema{}
	for k, src := range map[Kind]struct {
		url  string
		data []byte
	}{ProcessingContainer: {ProcessingContainerURL, ProcessingContainerJSON}, Task: {TaskURL, TaskJSON}} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src.data))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", k, err)
		}
		if err := c.AddResource(src.url, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", k, err)
		}
		sch, err := c.Compile(src.url)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", k, err)
		}
		out[k] = sch
	}
	return out, nil
})

// Validate checks a JSON document against the schema of the given kind and
// returns every violation as a problem naming the field in daemon/spec's
// path style ("templates[0].inputs[1].mounted_path"). The error wraps
// spec.ErrSyntax when data is not JSON; it is never a Problems value.
func Validate(k Kind, data []byte) (spec.Problems, error) {
	schemas, err := compiled()
	if err != nil {
		return nil, err
	}
	sch, ok := schemas[k]
	if !ok {
		return nil, fmt.Errorf("unknown schema kind %q (pc or task)", k)
	}
	if len(data) > spec.MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", spec.ErrTooLarge, len(data))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", spec.ErrSyntax, err)
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	var ps spec.Problems
	collect(ve, &ps)
	return ps, nil
}

var printer = message.NewPrinter(language.English)

// collect turns a validation error tree into problems. Alternatives that a
// value fails only because it is not of another type (anyOf [X, null]) are
// pruned, so that what is reported is the reason the intended form failed.
func collect(e *jsonschema.ValidationError, ps *spec.Problems) {
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*ps = append(*ps, spec.Problem{Field: fieldPath(append(slices.Clone(e.InstanceLocation), m)), Description: "required"})
		}
		return
	case *kind.AnyOf, *kind.OneOf:
		var keep []*jsonschema.ValidationError
		var wants []string
		for _, c := range e.Causes {
			if t := typeOnly(c, e.InstanceLocation); t != nil {
				wants = append(wants, t.Want...)
				continue
			}
			keep = append(keep, c)
		}
		switch len(keep) {
		case 0:
			got := ""
			if t := typeOnly(e.Causes[0], e.InstanceLocation); t != nil {
				got = t.Got
			}
			*ps = append(*ps, spec.Problem{Field: fieldPath(e.InstanceLocation),
				Description: fmt.Sprintf("got %s, want %s", got, strings.Join(wants, " or "))})
		case 1:
			collect(keep[0], ps)
		default:
			for _, c := range keep {
				collect(c, ps)
			}
		}
		return
	}
	if len(e.Causes) == 0 {
		*ps = append(*ps, spec.Problem{Field: fieldPath(e.InstanceLocation), Description: e.ErrorKind.LocalizedString(printer)})
		return
	}
	for _, c := range e.Causes {
		collect(c, ps)
	}
}

// typeOnly returns the type mismatch that is e's only failure at loc, or nil.
func typeOnly(e *jsonschema.ValidationError, loc []string) *kind.Type {
	for {
		if t, ok := e.ErrorKind.(*kind.Type); ok && len(e.Causes) == 0 && slices.Equal(e.InstanceLocation, loc) {
			return t
		}
		if len(e.Causes) != 1 {
			return nil
		}
		e = e.Causes[0]
	}
}

// fieldPath writes JSON pointer tokens as "a.b[2].c", quoting keys that are
// not plain words.
func fieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		switch {
		case t != "" && strings.Trim(t, "0123456789") == "":
			b.WriteString("[" + t + "]")
		case t != "" && strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "":
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(t)
		default:
			b.WriteString("[" + strconv.Quote(t) + "]")
		}
	}
	return b.String()
}

// JSONSchema is the kind of a JSON Schema document itself (Kaapana's
// ProcessingContainer.schema.json, say), which Check compiles rather than
// validates against one of pcnode's schemas.
const JSONSchema Kind = "jsonschema"

// Check is what pcnode-cli validate asks of the schemas: for
// ProcessingContainer and Task, Validate; for JSONSchema, whether data
// compiles as a JSON Schema (draft 2020-12 unless it names another
// dialect), reported as one problem for the whole document when it does
// not.
func Check(k Kind, data []byte) (spec.Problems, error) {
	if k != JSONSchema {
		return Validate(k, data)
	}
	if len(data) > spec.MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", spec.ErrTooLarge, len(data))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err == nil {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err = c.AddResource("file:///schema.json", doc); err == nil {
			_, err = c.Compile("file:///schema.json")
		}
	}
	if err != nil {
		return spec.Problems{{Description: "not a valid JSON Schema: " + err.Error()}}, nil
	}
	return nil, nil
}
