package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pcnode/pcnode/daemon/spec"
)

// schemaKind is the kind of document validate checks; the words are
// pcnode-schema's (and validate's --schema).
type schemaKind string

const (
	kindPC   schemaKind = "pc"   // processing-container.json
	kindTask schemaKind = "task" // Kaapana task.json
	// kindJSONSchema is a JSON Schema document, such as Kaapana's
	// ProcessingContainer.schema.json and Task.schema.json: it is checked to
	// compile as a JSON Schema.
	kindJSONSchema schemaKind = "jsonschema"
)

// schemaBinary is the program that holds pcnode's JSON Schemas
// (cmd/pcnode-schema), installed beside pcnode-cli.
const schemaBinary = "pcnode-schema"

// schemaTimeout bounds one pcnode-schema run.
const schemaTimeout = time.Minute

// schemaChecker checks documents against pcnode's JSON Schemas.
type schemaChecker interface {
	// Ready says why no check can run, if none can.
	Ready() error
	// Check checks data against the JSON Schema of kind, or for
	// kindJSONSchema that data compiles as one. An error means the check
	// could not run (data is not JSON, say); validate reports its text as a
	// problem.
	Check(kind schemaKind, data []byte) (spec.Problems, error)
}

// schemas is validate's checker. pcnode-cli does not link the schemas: the
// JSON Schema library compiles every draft's meta-schema as its package
// initialises, about 10 ms of CPU that every pcnode-cli command (submit,
// run, logs) would pay. validate runs pcnode-schema instead. Tests use the
// in-process check.
var schemas schemaChecker = execSchemas{}

// execSchemas runs pcnode-schema.
type execSchemas struct{}

func (execSchemas) Ready() error {
	_, err := findSchemaBinary()
	return err
}

// Check runs pcnode-schema KIND with data on stdin.
func (execSchemas) Check(kind schemaKind, data []byte) (spec.Problems, error) {
	bin, err := findSchemaBinary()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, string(kind))
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", bin, kind, err, strings.TrimSpace(errb.String()))
	}
	var res struct {
		Problems spec.Problems `json:"problems"`
		Error    string        `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("%s %s: unreadable answer: %v", bin, kind, err)
	}
	if res.Error != "" {
		return nil, errors.New(res.Error)
	}
	return res.Problems, nil
}

// findSchemaBinary finds pcnode-schema beside pcnode-cli's own executable
// (symbolic links resolved), else on $PATH.
func findSchemaBinary() (string, error) {
	var beside string
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		beside = filepath.Join(filepath.Dir(self), schemaBinary)
		if info, err := os.Stat(beside); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return beside, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", beside, err)
		}
	}
	if p, err := exec.LookPath(schemaBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("validate needs %s, which holds pcnode's JSON Schemas and is installed beside pcnode-cli: not found at %s nor on $PATH (make build puts it in bin/)", schemaBinary, beside)
}
