package altda

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestKeccakCommitment(t *testing.T) {
	// keccak256("") is the well-known c5d2...a470.
	c := Keccak256Commitment(nil)
	if got, want := c.String(), "0x00c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"; got != want {
		t.Fatalf("commitment of empty input %s, want %s", got, want)
	}
	if c.Type() != Keccak256Type || !c.Verifiable() {
		t.Fatal("keccak commitment has wrong type or is not verifiable")
	}
	if err := c.Verify(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify([]byte{0}); !errors.Is(err, ErrCommitmentMismatch) {
		t.Fatalf("verify of other data: %v", err)
	}
	if got := c.TxData(); got[0] != 1 || !bytes.Equal(got[1:], c) {
		t.Fatalf("tx data %x", got)
	}
}

func TestContentAddressedGeneric(t *testing.T) {
	data := []byte("frame")
	a, b := ContentAddressedGeneric(0x0c, data), ContentAddressedGeneric(0x0c, data)
	if !bytes.Equal(a, b) || len(a) != 34 || a[0] != 0x01 || a[1] != 0x0c {
		t.Fatalf("generic commitment %s is not stable content-addressed 0x01 0x0c ‖ hash", a)
	}
	if err := a.Verify(data); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify([]byte("other")); !errors.Is(err, ErrCommitmentMismatch) {
		t.Fatalf("verify other: %v", err)
	}
	opaque := Commitment{0x01, 0x00, 1, 2, 3}
	if opaque.Verifiable() || opaque.Verify(data) == nil {
		t.Fatal("an opaque generic commitment claims to be verifiable")
	}
}

func TestParseCommitment(t *testing.T) {
	k := Keccak256Commitment([]byte("x"))
	for _, s := range []string{k.String(), strings.TrimPrefix(k.String(), "0x"), "0X" + k.String()[2:], strings.ToUpper(k.String()[2:])} {
		got, err := ParseCommitment(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("parse %q: %s, %v", s, got, err)
		}
	}
	bad := map[string]string{
		"empty":             "",
		"just 0x":           "0x",
		"odd length":        "0x0",
		"not hex":           "0xzz",
		"unknown type":      "0x02" + strings.Repeat("00", 32),
		"short keccak":      "0x00" + strings.Repeat("00", 31),
		"long keccak":       "0x00" + strings.Repeat("00", 33),
		"generic, no bytes": "0x01",
		"too long":          "0x01" + strings.Repeat("ab", MaxCommitmentLen),
		"path characters":   "0x00/../x",
	}
	for name, s := range bad {
		if _, err := ParseCommitment(s); !errors.Is(err, ErrInvalidCommitment) {
			t.Errorf("%s (%q): got %v, want ErrInvalidCommitment", name, s, err)
		}
	}
	if c, err := ParseCommitment("0x01ff00"); err != nil || c.Type() != GenericType {
		t.Fatalf("short generic commitment: %v", err)
	}
}

// FuzzParseCommitment: parsing never panics, and what parses prints back to itself.
func FuzzParseCommitment(f *testing.F) {
	f.Add(Keccak256Commitment([]byte("seed")).String())
	f.Add(ContentAddressedGeneric(0xff, []byte("seed")).String())
	f.Add("01ff")
	f.Add("0x")
	f.Add("0x00")
	f.Add("0X0102")
	f.Add("zz")
	f.Add("0x02" + strings.Repeat("11", 32))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommitment(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommitment) {
				t.Fatalf("error %v does not wrap ErrInvalidCommitment", err)
			}
			return
		}
		again, err := ParseCommitment(c.String())
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("round trip of %q: %s, %v", s, again, err)
		}
		if _, err := DecodeCommitment(c); err != nil {
			t.Fatalf("decode of parsed %s: %v", c, err)
		}
	})
}

// FuzzDecodeCommitment checks the raw form, as read from a server's /put answer.
func FuzzDecodeCommitment(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add(append([]byte{0x00}, make([]byte, 32)...))
	f.Add([]byte{0x01, 0xff, 0x01})
	f.Add([]byte{0x03, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommitment(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c, b) {
			t.Fatalf("decoded %x from %x", c, b)
		}
		if c.Verifiable() {
			_ = c.Verify(b) // must not panic whatever the length
		}
	})
}
