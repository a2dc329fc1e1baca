package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file is the one place where quantities become text for people:
// every table and message of the CLI formats bytes, CPU, durations and
// times through these functions, so a size reads "23.5 GiB" everywhere and
// never "24684084Ki". JSON output carries the API's plain integers.

// now is the clock the tables measure ages and running durations against,
// and zone the time zone they show times in (nil: the local zone); tests
// fix both.
var (
	now  = time.Now
	zone *time.Location
)

// binaryUnits are the units humanBytes steps through, 1024 apart.
var binaryUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// humanBytes writes a byte count with a binary unit and at most one
// decimal: "0 B", "512 B", "1.5 KiB", "23.5 GiB", "2 TiB". A negative count
// (which the API never sends) keeps its sign.
func humanBytes(n int64) string {
	if n < 0 {
		if n == -n { // math.MinInt64
			return strconv.FormatInt(n, 10) + " B"
		}
		return "-" + humanBytes(-n)
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, u := float64(n), 0
	for v >= 1024 && u < len(binaryUnits)-1 {
		v /= 1024
		u++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "1024.0" && u < len(binaryUnits)-1 { // 1023.96 KiB rounds up a unit
		s, u = "1.0", u+1
	}
	return strings.TrimSuffix(s, ".0") + " " + binaryUnits[u]
}

// humanCPU writes a milli-CPU count as cores: "250m" is "0.25 cores",
// "2000m" is "2 cores", "1000m" is "1 core".
func humanCPU(millis int64) string {
	if millis == 1000 {
		return "1 core"
	}
	s := strconv.FormatFloat(float64(millis)/1000, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " cores"
}

// humanDuration writes a duration the way a person reads it, with no more
// precision than matters at its size: "0s", "450ms", "12.3s", "1m32s",
// "2h5m", "3d4h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + humanDuration(-d)
	}
	if d == 0 {
		return "0s"
	}
	if ms := d.Round(time.Millisecond); ms < time.Second {
		return strconv.FormatInt(ms.Milliseconds(), 10) + "ms"
	}
	if ds := d.Round(100 * time.Millisecond); ds < 10*time.Second {
		return strings.TrimSuffix(strconv.FormatFloat(ds.Seconds(), 'f', 1, 64), ".0") + "s"
	}
	if s := d.Round(time.Second); s < time.Hour {
		if s < time.Minute {
			return strconv.FormatInt(int64(s/time.Second), 10) + "s"
		}
		return joinUnits(int64(s/time.Minute), "m", int64(s%time.Minute/time.Second), "s")
	}
	if m := d.Round(time.Minute); m < 24*time.Hour {
		return joinUnits(int64(m/time.Hour), "h", int64(m%time.Hour/time.Minute), "m")
	}
	h := d.Round(time.Hour)
	return joinUnits(int64(h/(24*time.Hour)), "d", int64(h%(24*time.Hour)/time.Hour), "h")
}

// joinUnits writes "1m32s", or "2m" when the smaller part is zero.
func joinUnits(big int64, bigUnit string, small int64, smallUnit string) string {
	if small == 0 {
		return fmt.Sprintf("%d%s", big, bigUnit)
	}
	return fmt.Sprintf("%d%s%d%s", big, bigUnit, small, smallUnit)
}

// humanTime writes a point in time in the local zone, to the second.
func humanTime(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return "-"
	}
	if zone != nil {
		return t.In(zone).Format(time.RFC3339)
	}
	return t.Local().Format(time.RFC3339)
}

// humanAge writes how long ago t was: "45s ago", "3h2m ago".
func humanAge(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return "-"
	}
	return humanDuration(now().Sub(t).Truncate(time.Second)) + " ago"
}

// humanPercent writes done of total as a whole percentage, "-" when the
// total is unknown.
func humanPercent(done, total int64) string {
	if total <= 0 {
		return "-"
	}
	return strconv.FormatInt(min(done, total)*100/total, 10) + "%"
}
