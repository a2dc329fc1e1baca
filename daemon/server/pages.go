package server

import (
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Bounds that keep every response message far below gRPC's default 4 MiB.
const (
	// eventManifestBytes bounds one output_manifest event of RunTask.
	eventManifestBytes = 1 << 20
	// responseProblemsBytes bounds the problems of one SubmitTasks error.
	responseProblemsBytes = 1 << 20
	// maxOutputsPageSize is GetTaskOutputs' largest page_size.
	maxOutputsPageSize = 10000
)

// fieldSize is what a message of n bytes adds as a repeated field.
func fieldSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// splitManifest cuts m into parts of at most maxBytes encoded, each with
// m's name, host path and totals and the next files in order. A manifest
// that fits is returned as is; a part always holds at least one file.
func splitManifest(m *pcnodev1.OutputManifest, maxBytes int) []*pcnodev1.OutputManifest {
	if proto.Size(m) <= maxBytes {
		return []*pcnodev1.OutputManifest{m}
	}
	header := func() *pcnodev1.OutputManifest {
		return &pcnodev1.OutputManifest{Name: m.GetName(), HostPath: m.GetHostPath(), FileCount: m.GetFileCount(), TotalBytes: m.GetTotalBytes()}
	}
	headerSize := proto.Size(header())
	var parts []*pcnodev1.OutputManifest
	cur, used := header(), headerSize
	for _, f := range m.GetFiles() {
		size := fieldSize(proto.Size(f))
		if len(cur.Files) > 0 && used+size > maxBytes {
			parts = append(parts, cur)
			cur, used = header(), headerSize
		}
		cur.Files = append(cur.Files, f)
		used += size
	}
	return append(parts, cur)
}

// boundProblems returns the leading problems that fit in maxBytes encoded,
// and when some do not, one more problem saying how many were left out.
func boundProblems(ps []*pcnodev1.Problem, maxBytes int) []*pcnodev1.Problem {
	used := 0
	for i, p := range ps {
		if used += fieldSize(proto.Size(p)); used > maxBytes {
			return append(ps[:i:i], &pcnodev1.Problem{Description: strconv.Itoa(len(ps)-i) + " more problems not shown"})
		}
	}
	return ps
}
