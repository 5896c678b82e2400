package eth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// The JSON below is written by hand in the encoding op-node and op-supervisor put on the wire.

const l2RefJSON = `{
  "hash": "0x1111111111111111111111111111111111111111111111111111111111111111",
  "number": 1234,
  "parentHash": "0x2222222222222222222222222222222222222222222222222222222222222222",
  "timestamp": 1700000000,
  "l1origin": {"hash": "0x3333333333333333333333333333333333333333333333333333333333333333", "number": 77},
  "sequenceNumber": 5
}`

func TestL2BlockRefJSON(t *testing.T) {
	var ref L2BlockRef
	if err := json.Unmarshal([]byte(l2RefJSON), &ref); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := L2BlockRef{
		Hash:           common.HexToHash("0x1111111111111111111111111111111111111111111111111111111111111111"),
		Number:         1234,
		ParentHash:     common.HexToHash("0x2222222222222222222222222222222222222222222222222222222222222222"),
		Time:           1700000000,
		L1Origin:       BlockID{Hash: common.HexToHash("0x3333333333333333333333333333333333333333333333333333333333333333"), Number: 77},
		SequenceNumber: 5,
	}
	if ref != want {
		t.Fatalf("decoded %+v, want %+v", ref, want)
	}
	assertRoundTrip(t, l2RefJSON, &L2BlockRef{})
	out, _ := json.Marshal(ref)
	if !strings.Contains(string(out), `"l1origin":`) || strings.Contains(string(out), `"l1Origin"`) {
		t.Fatalf("l1origin must be lowercase on the wire: %s", out)
	}
}

func TestNumbersArePlainJSONNumbers(t *testing.T) {
	out, err := json.Marshal(BlockID{Hash: common.Hash{1}, Number: 901})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"number":901`) {
		t.Fatalf("number must be a decimal JSON number: %s", out)
	}
	var id BlockID
	if err := json.Unmarshal([]byte(`{"hash":"0x01","number":"0x385"}`), &id); err == nil {
		t.Fatal("a hex-string number must be rejected")
	}
}

func TestProtocolTypesRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		json string
		into any
	}{
		{"BlockID", `{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9}`, &BlockID{}},
		{"BlockSeal", `{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9,"timestamp":18}`, &BlockSeal{}},
		{"BlockRef", `{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9,"parentHash":"0x5555555555555555555555555555555555555555555555555555555555555555","timestamp":18}`, &BlockRef{}},
		{"DerivedBlockRefPair", `{"source":{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9,"parentHash":"0x5555555555555555555555555555555555555555555555555555555555555555","timestamp":18},"derived":{"hash":"0x6666666666666666666666666666666666666666666666666666666666666666","number":3,"parentHash":"0x7777777777777777777777777777777777777777777777777777777777777777","timestamp":20}}`, &DerivedBlockRefPair{}},
		{"BlockReplacement", `{"replacement":{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9,"parentHash":"0x5555555555555555555555555555555555555555555555555555555555555555","timestamp":18},"invalidated":"0x8888888888888888888888888888888888888888888888888888888888888888"}`, &BlockReplacement{}},
		{"OutputV0", `{"stateRoot":"0x0102030000000000000000000000000000000000000000000000000000000000","messagePasserStorageRoot":"0x0405060000000000000000000000000000000000000000000000000000000000","blockHash":"0x0708090000000000000000000000000000000000000000000000000000000000"}`, &OutputV0{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { assertRoundTrip(t, tc.json, tc.into) })
	}
}

func TestSyncStatusJSON(t *testing.T) {
	ref := `{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9,"parentHash":"0x5555555555555555555555555555555555555555555555555555555555555555","timestamp":18}`
	l2 := `{"hash":"0x6666666666666666666666666666666666666666666666666666666666666666","number":3,"parentHash":"0x7777777777777777777777777777777777777777777777777777777777777777","timestamp":20,"l1origin":{"hash":"0x4444444444444444444444444444444444444444444444444444444444444444","number":9},"sequenceNumber":1}`
	doc := `{"current_l1":` + ref + `,"current_l1_finalized":` + ref + `,"head_l1":` + ref + `,"safe_l1":` + ref +
		`,"finalized_l1":` + ref + `,"unsafe_l2":` + l2 + `,"safe_l2":` + l2 + `,"finalized_l2":` + l2 +
		`,"pending_safe_l2":` + l2 + `,"cross_unsafe_l2":` + l2 + `,"local_safe_l2":` + l2 + `}`
	var st SyncStatus
	if err := json.Unmarshal([]byte(doc), &st); err != nil {
		t.Fatal(err)
	}
	if st.HeadL1.Number != 9 || st.LocalSafeL2.L1Origin.Number != 9 || st.CrossUnsafeL2.SequenceNumber != 1 {
		t.Fatalf("fields not decoded: %+v", st)
	}
	assertRoundTrip(t, doc, &SyncStatus{})
}

func TestRefConversions(t *testing.T) {
	r := L2BlockRef{Hash: common.Hash{1}, Number: 10, ParentHash: common.Hash{2}, Time: 30, L1Origin: BlockID{Number: 4}}
	if got := r.ParentID(); got != (BlockID{Hash: common.Hash{2}, Number: 9}) {
		t.Fatalf("parent id %v", got)
	}
	if got := r.BlockRef(); got != (BlockRef{Hash: common.Hash{1}, Number: 10, ParentHash: common.Hash{2}, Time: 30}) {
		t.Fatalf("block ref %v", got)
	}
	if got := (BlockRef{}).ParentID().Number; got != 0 {
		t.Fatalf("genesis parent number %d", got)
	}
	if got := r.BlockRef().Seal(); got.Timestamp != 30 || got.ID() != r.ID() {
		t.Fatalf("seal %v", got)
	}
}

// assertRoundTrip decodes doc into v, encodes it again and checks the JSON is unchanged.
func assertRoundTrip(t *testing.T, doc string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	var want, got bytes.Buffer
	if err := json.Compact(&want, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&got, out); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, want.Bytes(), got.Bytes()) {
		t.Fatalf("round trip of %T changed the JSON:\n in: %s\nout: %s", v, want.Bytes(), got.Bytes())
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}
