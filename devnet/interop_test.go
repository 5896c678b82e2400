package devnet

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/holiman/uint256"

	"github.com/opkit/opkit/interop"
)

// The CrossL2Inbox stand-in emits, for a validateMessage call, the ExecutingMessage event
// the supervisor decodes back to the same message; other calls revert.
func TestCrossL2InboxStandIn(t *testing.T) {
	db, err := state.New(common.Hash{}, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	db.SetCode(interop.CrossL2Inbox, CrossL2InboxCode(), tracing.CodeChangeUnspecified)
	db.SetBalance(common.Address{1}, uint256.NewInt(1e18), tracing.BalanceChangeUnspecified)
	id := interop.Identifier{Origin: common.Address{0xaa, 0xbb}, BlockNumber: 1234, LogIndex: 7, Timestamp: 1_700_000_000, ChainID: 901}
	hash := common.Hash{0x55, 0x66}
	db.SetTxContext(common.Hash{9}, 0)
	if _, _, err := runtime.Call(interop.CrossL2Inbox, ValidateMessageCalldata(id, hash), &runtime.Config{State: db, Origin: common.Address{1}}); err != nil {
		t.Fatalf("validateMessage reverted: %v", err)
	}
	logs := db.GetLogs(common.Hash{9}, 0, common.Hash{}, 0)
	if len(logs) != 1 {
		t.Fatalf("%d logs, want 1", len(logs))
	}
	m, err := interop.DecodeExecutingMessage(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Identifier != id || m.PayloadHash != hash {
		t.Fatalf("decoded %+v, want %+v and %s", m, id, hash)
	}
	bad := ValidateMessageCalldata(id, hash)
	bad[0] ^= 1
	if _, _, err := runtime.Call(interop.CrossL2Inbox, bad, &runtime.Config{State: db, Origin: common.Address{1}}); err == nil {
		t.Fatal("a call with another selector did not revert")
	}
	if _, _, err := runtime.Call(interop.CrossL2Inbox, ValidateMessageCalldata(id, hash)[:100], &runtime.Config{State: db, Origin: common.Address{1}}); err == nil {
		t.Fatal("a short call did not revert")
	}
}
