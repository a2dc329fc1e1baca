package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Info describes a log on disk.
type Info struct {
	// FirstSeq is the oldest sequence number still on disk (older entries
	// were rotated away); LastSeq the newest. The log holds no entries when
	// LastSeq < FirstSeq.
	FirstSeq, LastSeq uint64
	// Ended reports the end marker: nothing more will be written.
	Ended bool
	// Segments is the number of segment files, Bytes their total size.
	Segments int
	Bytes    int64
}

// Stat describes the log in dir. It returns an error wrapping
// fs.ErrNotExist when there is no such directory.
func Stat(dir string) (Info, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Info{}, fmt.Errorf("open log directory: %w", err)
	}
	defer root.Close()
	for {
		segs, err := listSegments(root)
		if err != nil {
			return Info{}, err
		}
		if len(segs) == 0 {
			return Info{FirstSeq: 1}, nil
		}
		info := Info{FirstSeq: segs[0], Segments: len(segs)}
		for _, first := range segs {
			if fi, err := root.Stat(segmentName(first)); err == nil {
				info.Bytes += fi.Size()
			}
		}
		newest := segs[len(segs)-1]
		f, err := root.Open(segmentName(newest))
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated away meanwhile
		}
		if err != nil {
			return Info{}, fmt.Errorf("open segment: %w", err)
		}
		s, err := scanSegment(f, newest)
		f.Close()
		if err != nil {
			return Info{}, fmt.Errorf("segment %s: %w", segmentName(newest), err)
		}
		info.LastSeq = newest - 1 + uint64(s.entries)
		info.Ended = s.ended
		return info, nil
	}
}
