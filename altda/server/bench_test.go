package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

// BenchmarkPut measures generic PUTs of 120000-byte frames into a synced Pebble primary
// over loopback HTTP from 32 concurrent clients. In generic mode only the server hashes,
// so a CPU profile of this benchmark is the server's.
func BenchmarkPut(b *testing.B) {
	p, err := pebblestore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s := launch(b, Config{Addr: "127.0.0.1:0", Primary: p, Logger: quietLogger(), GenericCommitment: true})
	defer s.Close(context.Background())
	c, _ := altda.NewClient(altda.ClientConfig{URL: s.URL(), Mode: altda.GenericMode}) // the client does not hash: the profile is the server's
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = frame(byte(i), 120000)
	}
	runClients(b, func(i int64) error {
		body := append([]byte(fmt.Sprintf("%d-", i)), bodies[i%256]...)
		_, err := c.Put(context.Background(), body)
		return err
	})
}

// BenchmarkGet measures GETs of 120000-byte preimages (hot: from the read cache) over
// loopback HTTP from 32 concurrent clients.
func BenchmarkGet(b *testing.B) {
	s := launch(b, Config{Addr: "127.0.0.1:0", Primary: store.NewMemory(), Logger: quietLogger()})
	defer s.Close(context.Background())
	c, _ := altda.NewClient(altda.ClientConfig{URL: s.URL()})
	comms := make([]altda.Commitment, 256)
	for i := range comms {
		var err error
		if comms[i], err = c.Put(context.Background(), frame(byte(i), 120000)); err != nil {
			b.Fatal(err)
		}
	}
	runClients(b, func(i int64) error {
		_, err := c.Get(context.Background(), comms[i%256])
		return err
	})
}

// runClients calls op about b.N times in all from 32 concurrent clients, numbering the
// calls from 1, and counts 120000 bytes per call.
func runClients(b *testing.B, op func(i int64) error) {
	var n atomic.Int64
	b.SetBytes(120000)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + 31) / 32
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				if err := op(n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
