package outputs

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BenchmarkCollect hashes 200 MiB spread over 50 files once with one worker
// and once with runtime.NumCPU() workers, and reports both throughputs and
// their ratio ("speedup"). The files are freshly written, so they are read
// from the page cache: this measures hashing, not the disk. Run it with
// -benchtime=1x.
func BenchmarkCollect(b *testing.B) {
	const (
		files    = 50
		fileSize = 4 << 20
		total    = files * fileSize
	)
	dir := base(b)
	data := randomBytes(42, fileSize)
	for i := range files {
		data[0] = byte(i) // distinct contents
		writeFile(b, filepath.Join(dir, fmt.Sprintf("f%02d", i)), data)
	}
	n := runtime.NumCPU()
	run := func(workers int) time.Duration {
		start := time.Now()
		m, err := Collect(context.Background(), "bench", dir, workers)
		if err != nil {
			b.Fatal(err)
		}
		if m.TotalBytes != total {
			b.Fatalf("Collect(%q) = %d bytes, want %d", dir, m.TotalBytes, total)
		}
		return time.Since(start)
	}
	var serial, parallel time.Duration
	for b.Loop() {
		serial += run(1)
		parallel += run(n)
	}
	mb := float64(total) / (1 << 20) * float64(b.N)
	b.ReportMetric(mb/serial.Seconds(), "MiB/s-1-worker")
	b.ReportMetric(mb/parallel.Seconds(), "MiB/s-NumCPU-workers")
	b.ReportMetric(float64(n), "workers")
	b.ReportMetric(serial.Seconds()/parallel.Seconds(), "speedup")
}
