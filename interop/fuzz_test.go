package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

func FuzzParseSecret(f *testing.F) {
	f.Add([]byte("0x" + strings.Repeat("0f", 32)))
	f.Add([]byte(strings.Repeat("ff", 32) + "\n"))
	f.Add([]byte("0x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSecret(data)
		if err != nil {
			return
		}
		again, err := ParseSecret([]byte(s.Hex()))
		if err != nil || again != s {
			t.Fatalf("secret does not survive its own file form: %v", err)
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	var s Secret
	now := time.Unix(1_700_000_000, 0)
	good, _ := s.NewToken(now)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJpYXQiOjF9.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		// Must not panic; a token accepted must verify again (no state).
		if s.VerifyToken(tok, now) == nil && s.VerifyToken(tok, now) != nil {
			t.Fatal("verification is not deterministic")
		}
	})
}

func FuzzParseDependencySet(f *testing.F) {
	f.Add([]byte(`{"dependencies":{"901":{},"902":{}}}`))
	f.Add([]byte(`{"dependencies":{"0x385":{"x":1}}}`))
	f.Add([]byte(`{"dependencies":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseDependencySet(data)
		if err != nil {
			return
		}
		out, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseDependencySet(out)
		if err != nil || len(s2.Chains()) != len(s.Chains()) {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
	})
}

func FuzzDecodeExecutingMessage(f *testing.F) {
	good := EncodeExecutingMessage(ExecutingMessage{Identifier: Identifier{Origin: common.Address{1}, BlockNumber: 5, LogIndex: 1, Timestamp: 9, ChainID: 901}})
	f.Add(good.Topics[1][:], good.Data)
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, topic1, data []byte) {
		l := &types.Log{Address: CrossL2Inbox, Topics: []common.Hash{ExecutingMessageTopic, common.BytesToHash(topic1)}, Data: data}
		m, err := DecodeExecutingMessage(l)
		if err != nil {
			return
		}
		back := EncodeExecutingMessage(*m)
		if string(back.Data) != string(data) {
			t.Fatalf("decode/encode changed the data")
		}
	})
}
