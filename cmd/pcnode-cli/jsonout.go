package main

import (
	"bytes"
	"encoding/json"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSON output is stable: the same message gives the same bytes on every
// run. protojson deliberately varies its whitespace from build to build
// (so nobody depends on it), so the CLI never prints protojson's layout:
// it marshals compactly and re-indents with encoding/json, which drops
// every insignificant space and writes a fixed two-space indent. Field
// order is protojson's (field number order, map keys sorted), which is
// deterministic; field names are the API's lowerCamelCase JSON names.

// stableJSON marshals m as JSON indented with two spaces (multi is true) or
// on one line, always byte-identical for equal messages.
func stableJSON(m proto.Message, multi bool) ([]byte, error) {
	raw, err := protojson.MarshalOptions{}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if multi {
		err = json.Indent(&buf, raw, "", "  ")
	} else {
		err = json.Compact(&buf, raw)
	}
	if err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// printJSON writes m as indented, stable JSON.
func printJSON(w io.Writer, m proto.Message) error {
	return writeProto(w, m, true)
}

// printJSONLine writes m as one stable JSON line (streams: logs, watch).
func printJSONLine(w io.Writer, m proto.Message) error {
	return writeProto(w, m, false)
}

func writeProto(w io.Writer, m proto.Message, multi bool) error {
	b, err := stableJSON(m, multi)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
