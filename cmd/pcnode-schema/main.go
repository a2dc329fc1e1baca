// Command pcnode-schema checks one document against pcnode's JSON Schemas
// for pcnode-cli validate, which runs it (it is installed beside
// pcnode-cli). It is a binary of its own so that pcnode-cli does not link
// the JSON Schema library, whose initialisation would cost every pcnode-cli
// command about 10 ms of CPU.
//
// Usage:
//
//	pcnode-schema pc|task|jsonschema < FILE
//
// It reads the document (at most daemon/spec's MaxFileSize) from stdin and
// writes one JSON object to stdout: {"problems": [{"field": ..,
// "description": ..}, ...]} when the check found problems, {} when it found
// none, or {"error": ".."} when it could not run (not JSON, too large). The exit status
// is 0 in both cases and 2 for a usage error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/spec/schema"
)

// result is what pcnode-schema writes; pcnode-cli reads the same shape.
type result struct {
	Problems spec.Problems `json:"problems,omitempty"`
	Error    string        `json:"error,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: pcnode-schema pc|task|jsonschema < FILE")
		return 2
	}
	k := schema.Kind(args[0])
	switch k {
	case schema.ProcessingContainer, schema.Task, schema.JSONSchema:
	default:
		fmt.Fprintf(stderr, "pcnode-schema: unknown kind %q: want pc, task or jsonschema\n", args[0])
		return 2
	}
	data, err := io.ReadAll(io.LimitReader(stdin, spec.MaxFileSize+1))
	var res result
	if err != nil {
		res.Error = fmt.Sprintf("reading the document: %v", err)
	} else if ps, err := schema.Check(k, data); err != nil {
		res.Error = err.Error()
	} else {
		res.Problems = ps
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "pcnode-schema: %v\n", err)
		return 1
	}
	return 0
}
