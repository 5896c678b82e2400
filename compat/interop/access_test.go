package interop_test

import (
	"testing"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/types"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/interop"
)

// opkit's access-list entries and checksums are op-supervisor v1.16.13's, and its parser
// accepts what op-supervisor's accepts (chain IDs within 64 bits) with the same result.
func FuzzAccessListVsOPSupervisor(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []common.Hash
		for len(data) >= 32 {
			entries = append(entries, common.Hash(data[:32]))
			data = data[32:]
		}
		ours, ourErr := interop.ParseAccessList(entries)
		var theirs []types.Access
		rest := entries
		var theirErr error
		for len(rest) > 0 {
			var a types.Access
			rest, a, theirErr = types.ParseAccess(rest)
			if theirErr != nil {
				break
			}
			theirs = append(theirs, a)
		}
		if ourErr == nil && theirErr != nil {
			t.Fatalf("opkit accepted what op-supervisor refuses (%v): %x", theirErr, entries)
		}
		if ourErr != nil {
			return // refusing a chain ID above 64 bits, or too many messages, is opkit's choice
		}
		if len(ours) != len(theirs) {
			t.Fatalf("%d messages, op-supervisor %d", len(ours), len(theirs))
		}
		for i, a := range ours {
			b := theirs[i]
			if eth.ChainIDFromUInt64(uint64(a.ChainID)) != b.ChainID || a.BlockNumber != b.BlockNumber ||
				a.Timestamp != b.Timestamp || a.LogIndex != b.LogIndex || a.Checksum != common.Hash(b.Checksum) {
				t.Fatalf("message %d: opkit %+v, op-supervisor %+v", i, a, b)
			}
		}
	})
}

// The entries opkit writes for a message are the ones op-supervisor writes.
func TestAccessListEntriesMatchOPSupervisor(t *testing.T) {
	id := interop.Identifier{Origin: common.Address{0xaa, 1}, BlockNumber: 77, LogIndex: 4, Timestamp: 1_700_000_123, ChainID: 902}
	payload := common.Hash{0x42, 7}
	args := types.ChecksumArgs{
		BlockNumber: id.BlockNumber, LogIndex: id.LogIndex, Timestamp: id.Timestamp,
		ChainID: eth.ChainIDFromUInt64(uint64(id.ChainID)), LogHash: types.PayloadHashToLogHash(payload, id.Origin),
	}
	want := types.EncodeAccessList([]types.Access{args.Access()})
	got := interop.AccessListEntries(id, payload)
	if len(got) != len(want) {
		t.Fatalf("%d entries, op-supervisor %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %x, op-supervisor %x", i, got[i], want[i])
		}
	}
}
