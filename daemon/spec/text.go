package spec

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// CheckName says why s cannot appear in a name or a path, or "" when it
// can. Names (task names, label keys and values, env names, template
// identifiers, channel names, image references) and paths are shown in
// tables and logs, so they may hold none of:
//
//   - bytes that are not UTF-8;
//   - control characters: C0 (U+0000–U+001F, including tab and newline),
//     DEL (U+007F) and C1 (U+0080–U+009F);
//   - Unicode bidirectional controls (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069), which reorder what a terminal shows;
//   - other format characters (category Cf, e.g. U+200B zero width space,
//     U+FEFF), which are invisible;
//   - line and paragraph separators (U+2028, U+2029), which break lines.
//
// The description names the first offending character by its code point.
func CheckName(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if why := badRune(r); why != "" {
			return fmt.Sprintf("contains %s %U", why, r)
		}
	}
	return ""
}

// badRune names the class of a rune CheckName refuses, or "".
func badRune(r rune) string {
	switch {
	case r < 0x80 && r >= 0x20 && r != 0x7f:
		return "" // printable ASCII: the common case
	case unicode.IsControl(r):
		return "control character"
	case isBidiControl(r):
		return "bidirectional control character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return "line or paragraph separator"
	}
	return ""
}

// isBidiControl reports whether r is one of Unicode's explicit
// bidirectional formatting characters (UAX #9, table 4).
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
