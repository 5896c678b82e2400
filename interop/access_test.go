package interop_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/interop"
)

// The entries of a message decode back to it, and its checksum is the one the OP Stack's
// encoding gives for this message (checked against op-supervisor's in compat/interop).
func TestAccessListRoundTrip(t *testing.T) {
	id := interop.Identifier{Origin: common.Address{0xaa}, BlockNumber: 12, LogIndex: 3, Timestamp: 1700000000, ChainID: 901}
	p := common.Hash{0x42}
	entries := interop.AccessListEntries(id, p)
	got, err := interop.ParseAccessList(slices.Concat(entries, entries))
	if err != nil {
		t.Fatal(err)
	}
	want := interop.Access{ChainID: 901, BlockNumber: 12, LogIndex: 3, Timestamp: 1700000000, Checksum: interop.MessageChecksum(id, p)}
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("parsed %+v, want twice %+v", got, want)
	}
	if got[0].Checksum[0] != 3 {
		t.Fatalf("checksum entry type %d", got[0].Checksum[0])
	}
	for _, bad := range [][]common.Hash{entries[:1], entries[1:], {entries[0], entries[0]}} {
		if _, err := interop.ParseAccessList(bad); !errors.Is(err, interop.ErrMalformedAccessList) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

func FuzzParseAccessList(f *testing.F) {
	id := interop.Identifier{Origin: common.Address{1}, BlockNumber: 5, LogIndex: 1, Timestamp: 10, ChainID: 902}
	e := interop.AccessListEntries(id, common.Hash{2})
	f.Add(slices.Concat(e[0][:], e[1][:]))
	f.Add(e[0][:])
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []common.Hash
		for len(data) >= 32 {
			entries = append(entries, common.Hash(data[:32]))
			data = data[32:]
		}
		got, err := interop.ParseAccessList(entries)
		if err != nil {
			return
		}
		for _, a := range got {
			if a.Checksum[0] != 3 {
				t.Fatalf("accepted checksum entry of type %d", a.Checksum[0])
			}
		}
	})
}
