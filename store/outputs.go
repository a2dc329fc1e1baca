package store

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Page bounds of GetOutputsPage. DefaultPageBytes also bounds ListTasks.
const (
	// DefaultOutputsPageSize is the files per page when OutputsOptions.PageSize is 0.
	DefaultOutputsPageSize = 1000
	// MaxOutputsPageSize is the most files per page; larger requests are reduced to it.
	MaxOutputsPageSize = 10000
	// DefaultPageBytes bounds the encoded size of one page of ListTasks or
	// GetOutputsPage when the options name no bound: half of gRPC's default
	// 4 MiB message size, so that a page with its envelope fits any client.
	DefaultPageBytes = 2 << 20
)

// OutputsOptions pages GetOutputsPage.
type OutputsOptions struct {
	// PageSize is the most files on a page: 0 means
	// DefaultOutputsPageSize, more than MaxOutputsPageSize means
	// MaxOutputsPageSize, negative is ErrInvalidArgument.
	PageSize int
	// MaxBytes bounds the page's encoded size (as repeated OutputManifest
	// of a response): the page stops before the file or channel that would
	// pass it, but always holds at least one of them. 0: DefaultPageBytes.
	MaxBytes int
	// PageToken continues after an earlier page of the same task. Empty:
	// the first page.
	PageToken string
}

// outputsPos is a position in a task's manifests: the next file to list is
// file fileIdx of manifest manIdx.
type outputsPos struct {
	manIdx, fileIdx uint64
}

// pageBudget adds items to a page until a count or byte bound would be
// passed. Until the page has made progress (holds an item, or a channel
// header with nothing after it) everything fits, so a page is never empty
// and paging always ends.
type pageBudget struct {
	maxBytes, used  int
	maxItems, items int
	progressed      bool
}

// fits reports whether something of size bytes may join the page, counting
// it when it does; items (tasks, files) also count against maxItems.
func (b *pageBudget) fits(size int, item bool) bool {
	if b.progressed && (b.used+size > b.maxBytes || (item && b.items >= b.maxItems)) {
		return false
	}
	b.used += size
	if item {
		b.items++
		b.progressed = true
	}
	return true
}

// progress records that the page moved on without adding an item.
func (b *pageBudget) progress() { b.progressed = true }

// embeddedSize is what a message of n bytes adds as a length-delimited
// field with a one-byte tag.
func embeddedSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// pageOutputs cuts one page out of manifests encoded as encodeManifests
// writes them. Manifest fields are decoded field by field so that files
// before the page cost a varint skip each, not a decode.
func pageOutputs(b []byte, id string, opts OutputsOptions) ([]*pcnodev1.OutputManifest, string, error) {
	pageSize := opts.PageSize
	switch {
	case pageSize < 0:
		return nil, "", fmt.Errorf("page size %d: %w", pageSize, ErrInvalidArgument)
	case pageSize == 0:
		pageSize = DefaultOutputsPageSize
	case pageSize > MaxOutputsPageSize:
		pageSize = MaxOutputsPageSize
	}
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultPageBytes
	}
	var pos outputsPos
	if opts.PageToken != "" {
		var err error
		if pos, err = decodeOutputsToken(opts.PageToken, id); err != nil {
			return nil, "", err
		}
	}
	budget := pageBudget{maxBytes: maxBytes, maxItems: pageSize}
	var page []*pcnodev1.OutputManifest
	found := false // pos names an existing manifest (or the end)
	for mi := uint64(0); len(b) > 0; mi++ {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return nil, "", fmt.Errorf("output manifests: bad field at %d bytes from the end: %w", len(b), ErrCorrupt)
		}
		b = b[n:]
		mb, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, "", fmt.Errorf("output manifests: truncated: %w", ErrCorrupt)
		}
		b = b[n:]
		if mi < pos.manIdx {
			continue
		}
		found = true
		first := uint64(0)
		if mi == pos.manIdx {
			first = pos.fileIdx
		}
		m, nfiles, err := manifestHeader(mb)
		if err != nil {
			return nil, "", err
		}
		if first > nfiles {
			return nil, "", fmt.Errorf("page token names file %d of a channel of %d: %w", first, nfiles, ErrInvalidPageToken)
		}
		// The header with a length prefix of up to 4 bytes: a page is
		// at most a few MiB.
		if !budget.fits(1+4+proto.Size(m), false) {
			return page, encodeOutputsToken(id, outputsPos{mi, first}), nil
		}
		page = append(page, m)
		if first == nfiles {
			budget.progress()
			continue
		}
		fi := uint64(0)
		for rest := mb; len(rest) > 0; {
			num, typ, n := protowire.ConsumeTag(rest)
			v := protowire.ConsumeFieldValue(num, typ, rest[n:])
			field := rest[n : n+v]
			rest = rest[n+v:]
			if num != 3 || typ != protowire.BytesType {
				continue
			}
			if fi++; fi <= first {
				continue
			}
			fb, _ := protowire.ConsumeBytes(field)
			if !budget.fits(embeddedSize(len(fb)), true) {
				return page, encodeOutputsToken(id, outputsPos{mi, fi - 1}), nil
			}
			f := &pcnodev1.OutputFile{}
			if err := proto.Unmarshal(fb, f); err != nil {
				return nil, "", fmt.Errorf("output manifests: %w: %w", ErrCorrupt, err)
			}
			m.Files = append(m.Files, f)
		}
	}
	if !found && pos != (outputsPos{}) {
		return nil, "", fmt.Errorf("page token names channel %d of fewer: %w", pos.manIdx, ErrInvalidPageToken)
	}
	return page, "", nil
}

// manifestHeader decodes an encoded OutputManifest without its files
// (field 3), and counts them. It checks every field, so that later walks
// over mb need not.
func manifestHeader(mb []byte) (*pcnodev1.OutputManifest, uint64, error) {
	var (
		header []byte
		files  uint64
	)
	for rest := mb; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, 0, fmt.Errorf("output manifest: bad tag: %w", ErrCorrupt)
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, 0, fmt.Errorf("output manifest: bad field %d: %w", num, ErrCorrupt)
		}
		if num == 3 && typ == protowire.BytesType {
			files++
		} else {
			header = append(header, rest[:n+m]...)
		}
		rest = rest[n+m:]
	}
	man := &pcnodev1.OutputManifest{}
	if err := proto.Unmarshal(header, man); err != nil {
		return nil, 0, fmt.Errorf("output manifest: %w: %w", ErrCorrupt, err)
	}
	return man, files, nil
}

// An outputs page token is base64url (unpadded) of
//
//	outputsTokenVersion (1 byte) ‖ task id hash (8 bytes) ‖ uvarint manifest index ‖ uvarint file index
//
// The hash ties a token to its task. Like ListTasks tokens, only the exact
// strings encodeOutputsToken makes are accepted.
const (
	outputsTokenVersion = 0x4f // 'O': never a ListTasks token's version
	taskHashLen         = 8
)

func taskHash(id string) []byte {
	h := sha256.Sum256([]byte("outputs\x00" + id))
	return h[:taskHashLen]
}

func encodeOutputsToken(id string, pos outputsPos) string {
	b := append([]byte{outputsTokenVersion}, taskHash(id)...)
	b = binary.AppendUvarint(b, pos.manIdx)
	b = binary.AppendUvarint(b, pos.fileIdx)
	return tokenEncoding.EncodeToString(b)
}

// maxOutputsTokenLen is the longest token: two 10-byte varints.
var maxOutputsTokenLen = tokenEncoding.EncodedLen(1 + taskHashLen + 2*binary.MaxVarintLen64)

func decodeOutputsToken(token, id string) (outputsPos, error) {
	if len(token) > maxOutputsTokenLen {
		return outputsPos{}, fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 1+taskHashLen || b[0] != outputsTokenVersion {
		return outputsPos{}, fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	if string(b[1:1+taskHashLen]) != string(taskHash(id)) {
		return outputsPos{}, fmt.Errorf("page token was made for another task: %w", ErrInvalidPageToken)
	}
	rest := b[1+taskHashLen:]
	mi, n := binary.Uvarint(rest)
	if n <= 0 {
		return outputsPos{}, fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	fi, k := binary.Uvarint(rest[n:])
	if k <= 0 || n+k != len(rest) {
		return outputsPos{}, fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	pos := outputsPos{mi, fi}
	// One spelling per position: no over-long varints, no padding bits.
	if encodeOutputsToken(id, pos) != token {
		return outputsPos{}, fmt.Errorf("malformed page token: %w", ErrInvalidPageToken)
	}
	return pos, nil
}
