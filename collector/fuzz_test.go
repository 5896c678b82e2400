package collector

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/collector/store"
)

// FuzzDbGetKey feeds debug_dbGet arbitrary keys: it never panics, and anything it
// returns hashes to the key's hash.
func FuzzDbGetKey(f *testing.F) {
	st, err := store.OpenInMemory()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	node := []byte{0xc2, 0x80, 0x80}
	code := []byte{0x60, 0x00, 0x56}
	nh, ch := crypto.Keccak256Hash(node), crypto.Keccak256Hash(code)
	if err := st.AddBlock(&store.Block{Number: 1, State: []common.Hash{nh}, Codes: []common.Hash{ch}},
		map[common.Hash][]byte{nh: node, ch: code}); err != nil {
		f.Fatal(err)
	}
	api := &debugAPI{&Collector{store: st}}
	f.Add(nh.Hex())
	f.Add("0x63" + ch.Hex()[2:])
	f.Add("0x64" + ch.Hex()[2:])
	f.Add("0x")
	f.Add("")
	f.Add("0x" + strings.Repeat("ff", 32))
	f.Add("0xzz")
	f.Fuzz(func(t *testing.T, key string) {
		v, err := api.DbGet(key)
		if err != nil {
			return
		}
		raw, derr := hex.DecodeString(strings.TrimPrefix(key, "0x"))
		if derr != nil {
			t.Fatalf("key %q answered but is not hex", key)
		}
		want := raw[len(raw)-32:]
		if !bytes.Equal(crypto.Keccak256(v), want) {
			t.Fatalf("key %q answered with a value hashing to %x", key, crypto.Keccak256(v))
		}
	})
}

// FuzzDecodeSlot checks eth_getProof's storage-key parser: no panic, at most 32 bytes,
// and the digits it accepts are the value it returns.
func FuzzDecodeSlot(f *testing.F) {
	for _, s := range []string{"0x0", "0x01", "0x" + strings.Repeat("a", 64), "0x" + strings.Repeat("a", 65), "0X1f", "12", "0x", "0xg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := decodeSlot(s)
		if err != nil {
			return
		}
		if len(raw) > common.HashLength {
			t.Fatalf("%q decoded to %d bytes", s, len(raw))
		}
		digits := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		if len(digits)%2 == 1 {
			digits = "0" + digits
		}
		if !strings.EqualFold(hex.EncodeToString(raw), digits) {
			t.Fatalf("%q decoded to %x", s, raw)
		}
	})
}
