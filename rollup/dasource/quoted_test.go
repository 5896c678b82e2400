package dasource

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// FuzzQuotedUint: the beacon API's decimal strings decode to what strconv reads, quoted or
// not, and anything else is refused.
func FuzzQuotedUint(f *testing.F) {
	for _, s := range []string{`"12"`, `12`, `"0"`, `"18446744073709551615"`, `"18446744073709551616"`, `"-1"`, `"0x10"`, `""`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var q quotedUint
		err := json.Unmarshal([]byte(in), &q)
		want, werr := strconv.ParseUint(strings.Trim(strings.TrimSpace(in), `"`), 10, 64)
		if !json.Valid([]byte(in)) {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted", in)
			}
			return
		}
		if (err == nil) != (werr == nil) && in != "null" {
			t.Fatalf("%q: decoded %d (%v), strconv %d (%v)", in, q, err, want, werr)
		}
		if err == nil && in != "null" && uint64(q) != want {
			t.Fatalf("%q: %d, want %d", in, q, want)
		}
	})
}
