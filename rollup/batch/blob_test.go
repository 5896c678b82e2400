package batch

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

func TestBlobRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 27, 28, 123, 124, 127, 250, 251, 1000, 4096, MaxBlobDataSize - 1, MaxBlobDataSize} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		var b Blob
		if err := b.FromData(data); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for i := 0; i < BlobSize; i += 32 {
			if b[i]&0xC0 != 0 {
				t.Fatalf("n=%d: field element %d has top bits set", n, i/32)
			}
		}
		got, err := b.ToData()
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("n=%d: round trip differs", n)
		}
	}
	var b Blob
	if err := b.FromData(make([]byte, MaxBlobDataSize+1)); !errors.Is(err, ErrBlobTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
}

// TestBlobLayout checks the first round against the layout in the specification.
func TestBlobLayout(t *testing.T) {
	data := make([]byte, 130)
	for i := range data {
		data[i] = byte(i + 1)
	}
	data[27] = 0xC5 // x: high bits 11, low 000101
	var b Blob
	if err := b.FromData(data); err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x05 || b[1] != 0 || b[2] != 0 || b[3] != 0 || b[4] != 130 {
		t.Fatalf("header %x", b[:5])
	}
	if !bytes.Equal(b[5:32], data[:27]) {
		t.Fatal("first 27 data bytes misplaced")
	}
	// y = data[59], FE1[0] = (y & 0x0F) | (x & 0xC0) >> 2
	if want := (data[59] & 0x0F) | 0x30; b[32] != want {
		t.Fatalf("FE1[0] = %#x, want %#x", b[32], want)
	}
	if !bytes.Equal(b[33:64], data[28:59]) {
		t.Fatal("FE1 body misplaced")
	}
}

func TestBlobRejects(t *testing.T) {
	var base Blob
	if err := base.FromData([]byte("some blob data")); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b *Blob)) *Blob { b := base; f(&b); return &b }
	cases := map[string]struct {
		b    *Blob
		want error
	}{
		"version":          {mut(func(b *Blob) { b[1] = 1 }), ErrBlobVersion},
		"length":           {mut(func(b *Blob) { b[2] = 0xff }), ErrBlobLength},
		"top bits":         {mut(func(b *Blob) { b[32] |= 0x40 }), ErrBlobFieldElement},
		"padding in round": {mut(func(b *Blob) { b[40] = 1 }), ErrBlobTrailingOutput},
		"padding after":    {mut(func(b *Blob) { b[BlobSize-1] = 1 }), ErrBlobTrailingBytes},
	}
	for name, c := range cases {
		if _, err := c.b.ToData(); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	// op-node never checks the top bits of the very first field element.
	if _, err := mut(func(b *Blob) { b[0] |= 0x80 }).ToData(); err != nil {
		t.Errorf("first field element top bits: %v", err)
	}
}

type blobVector struct {
	Blob      string `json:"blob"`
	Data      string `json:"data"`
	DataZeros int    `json:"data_zeros"`
	Err       string `json:"err"`
}

func (v blobVector) blob(t *testing.T) *Blob {
	var b Blob
	raw, err := hex.DecodeString(v.Blob)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[:], raw)
	return &b
}

func (v blobVector) data(t *testing.T) []byte {
	if v.DataZeros > 0 {
		return make([]byte, v.DataZeros)
	}
	d, err := hex.DecodeString(v.Data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestBlobVectors runs the OP Stack's own blob test vectors, kept as data.
func TestBlobVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/blob_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs struct{ Decode, Encode []blobVector }
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Decode) == 0 || len(vs.Encode) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vs.Decode {
		got, err := v.blob(t).ToData()
		if (err != nil) != (v.Err != "") {
			t.Fatalf("decode %d: err %v, want %q", i, err, v.Err)
		}
		if err == nil && !bytes.Equal(got, v.data(t)) {
			t.Fatalf("decode %d: data differs", i)
		}
	}
	for i, v := range vs.Encode {
		var b Blob
		err := b.FromData(v.data(t))
		if (err != nil) != (v.Err != "") {
			t.Fatalf("encode %d: err %v, want %q", i, err, v.Err)
		}
		if err == nil && b != *v.blob(t) {
			t.Fatalf("encode %d: blob differs", i)
		}
	}
}
