package dasource_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/derive"
)

// startDAServer runs a real AltDA server over a memory store on loopback.
func startDAServer(t *testing.T, generic bool) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", Primary: store.NewMemory(), GenericCommitment: generic,
		MaxInputBytes: 200_000, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return srv
}

func daClient(t *testing.T, url string, mode altda.Mode) *altda.Client {
	t.Helper()
	c, err := altda.NewClient(altda.ClientConfig{URL: url, Mode: mode, VerifyGets: true, GetTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAltDAKeccak: commitments posted by the batcher are replaced by their inputs from a
// real DA server; direct frames pass; bad commitments, commitments of the other type and
// oversized keccak inputs are skipped; a missing input waits while the challenge window
// runs and is critical once L1 is past it.
func TestAltDAKeccak(t *testing.T) {
	c := startL1(t)
	batcher := c.Accounts()[1]
	srv := startDAServer(t, false)
	put := daClient(t, srv.URL(), altda.KeccakMode)
	ctx := context.Background()
	input := append([]byte{0}, bytes.Repeat([]byte{0xab}, 500)...)
	comm, err := put.Put(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	huge := append([]byte{0}, bytes.Repeat([]byte{0xcd}, dasource.MaxAltDAInputSize)...)
	hugeComm, err := put.Put(ctx, huge)
	if err != nil {
		t.Fatal(err)
	}
	generic := altda.ContentAddressedGeneric(0, input)

	items := map[common.Hash][][]byte{}
	items[c.calldata(t, batcher, testInbox, comm.TxData())] = [][]byte{input}
	items[c.calldata(t, batcher, testInbox, []byte{0, 1, 2})] = [][]byte{{0, 1, 2}}
	c.calldata(t, batcher, testInbox, []byte{1, 0, 1, 2}) // keccak commitment of 3 bytes
	c.calldata(t, batcher, testInbox, []byte{1, 7, 1})    // unknown commitment type
	c.calldata(t, batcher, testInbox, generic.TxData())   // generic on a keccak chain
	c.calldata(t, batcher, testInbox, hugeComm.TxData())  // over the keccak input limit
	ref := c.mine(t, 6)

	cfg := c.rollupConfig()
	cfg.AltDAConfig = &rollup.AltDAConfig{DAChallengeAddress: common.Address{0xdc}, CommitmentType: rollup.KeccakCommitment, DAChallengeWindow: 3, DAResolveWindow: 3}
	m := &countingMetrics{dropped: map[string]int{}}
	src, err := dasource.New(dasource.Config{Rollup: cfg, L1: c.src, AltDA: daClient(t, srv.URL(), altda.KeccakMode), Log: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.TxData(ctx, ref, batcher.Address)
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, got, c.expected(ref, items))
	if st := src.Stats(); st.BadCommitments != 2 || st.CommitmentMismatch != 1 || st.AltDATooLarge != 1 || st.AltDAFetched != 2 ||
		m.dropped[dasource.DropBadCommitment] != 2 || m.dropped[dasource.DropCommitmentMismatch] != 1 || m.dropped[dasource.DropAltDATooLarge] != 1 {
		t.Fatalf("stats %+v, metrics %v", src.Stats(), m.dropped)
	}

	// An input the server never got.
	missing := altda.Keccak256Commitment([]byte("never stored"))
	c.calldata(t, batcher, testInbox, missing.TxData())
	ref = c.mine(t, 1)
	for i := uint64(0); i <= cfg.AltDAConfig.DAChallengeWindow; i++ {
		if _, err := src.TxData(ctx, ref, batcher.Address); !errors.Is(err, derive.ErrTemporary) || !errors.Is(err, altda.ErrNotFound) {
			t.Fatalf("missing input, L1 head %d: %v", c.Head().Number, err)
		}
		if _, err := c.Mine(); err != nil {
			t.Fatal(err)
		}
	}
	// L1 now holds block ref+window+1: the window has passed (at ref+window it had not).
	if _, err := src.TxData(ctx, ref, batcher.Address); !errors.Is(err, derive.ErrCritical) || !errors.Is(err, dasource.ErrMissingPastWindow) {
		t.Fatalf("missing input past the window (head %d): %v", c.Head().Number, err)
	}

	// A DA server that is down is a temporary failure.
	srv.Close(ctx)
	c.calldata(t, batcher, testInbox, comm.TxData())
	ref = c.mine(t, 1)
	if _, err := src.TxData(ctx, ref, batcher.Address); !errors.Is(err, derive.ErrTemporary) {
		t.Fatalf("DA server down: %v", err)
	}
}

// TestAltDAGeneric: a generic-commitment chain reads the server's commitments and skips
// keccak ones.
func TestAltDAGeneric(t *testing.T) {
	c := startL1(t)
	batcher := c.Accounts()[1]
	srv := startDAServer(t, true)
	put := daClient(t, srv.URL(), altda.GenericMode)
	ctx := context.Background()
	input := []byte{0, 5, 6, 7}
	comm, err := put.Put(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if comm.Type() != altda.GenericType {
		t.Fatalf("server answered a %s commitment", comm.Type())
	}
	items := map[common.Hash][][]byte{}
	items[c.calldata(t, batcher, testInbox, comm.TxData())] = [][]byte{input}
	c.calldata(t, batcher, testInbox, altda.Keccak256Commitment(input).TxData())
	ref := c.mine(t, 2)
	cfg := c.rollupConfig()
	cfg.AltDAConfig = &rollup.AltDAConfig{CommitmentType: rollup.GenericCommitment, DAChallengeWindow: 3, DAResolveWindow: 3}
	src, err := dasource.New(dasource.Config{Rollup: cfg, L1: c.src, AltDA: daClient(t, srv.URL(), altda.GenericMode), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.TxData(ctx, ref, batcher.Address)
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, got, c.expected(ref, items))
	if st := src.Stats(); st.CommitmentMismatch != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := dasource.New(dasource.Config{Rollup: c.rollupConfig(), L1: c.src, AltDA: put}); err == nil {
		t.Fatal("an AltDA client without alt_da in the rollup config accepted")
	}
}
