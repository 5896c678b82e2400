// Package eth_test checks opkit's shared chain types against op-service's.
package eth_test

import (
	"encoding/json"
	"testing"

	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
)

func TestOutputRootMatchesOPService(t *testing.T) {
	for i := 0; i < 50; i++ {
		mine := eth.OutputV0{
			StateRoot:                common.BytesToHash([]byte{byte(i), 1}),
			MessagePasserStorageRoot: common.BytesToHash([]byte{byte(i), 2}),
			BlockHash:                common.BytesToHash([]byte{byte(i), 3}),
		}
		theirs := opeth.OutputV0{
			StateRoot:                opeth.Bytes32(mine.StateRoot),
			MessagePasserStorageRoot: opeth.Bytes32(mine.MessagePasserStorageRoot),
			BlockHash:                mine.BlockHash,
		}
		if got, want := mine.Root(), common.Hash(opeth.OutputRoot(&theirs)); got != want {
			t.Fatalf("output root %s, op-service computes %s", got, want)
		}
	}
}

// TestJSONInterchange encodes with one side and decodes with the other.
func TestJSONInterchange(t *testing.T) {
	ref := opeth.L2BlockRef{
		Hash: common.Hash{1}, Number: 901, ParentHash: common.Hash{2}, Time: 1234,
		L1Origin: opeth.BlockID{Hash: common.Hash{3}, Number: 77}, SequenceNumber: 4,
	}
	status := opeth.SyncStatus{
		HeadL1:        opeth.L1BlockRef{Hash: common.Hash{9}, Number: 12, ParentHash: common.Hash{8}, Time: 99},
		UnsafeL2:      ref,
		CrossUnsafeL2: ref,
		LocalSafeL2:   ref,
	}
	data, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	var mine eth.SyncStatus
	if err := json.Unmarshal(data, &mine); err != nil {
		t.Fatal(err)
	}
	if mine.UnsafeL2.L1Origin.Number != 77 || mine.HeadL1.Time != 99 || mine.LocalSafeL2.SequenceNumber != 4 {
		t.Fatalf("decoded %+v", mine)
	}
	back, err := json.Marshal(mine)
	if err != nil {
		t.Fatal(err)
	}
	var theirs opeth.SyncStatus
	if err := json.Unmarshal(back, &theirs); err != nil {
		t.Fatal(err)
	}
	if theirs != status {
		t.Fatalf("op-service decoded %+v, want %+v", theirs, status)
	}
}
