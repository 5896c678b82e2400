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
	s, err := New(Config{Addr: "127.0.0.1:0", Primary: p, Logger: quietLogger(), GenericCommitment: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	c, _ := altda.NewClient(altda.ClientConfig{URL: s.URL(), Mode: altda.GenericMode}) // the client does not hash: the profile is the server's
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = frame(byte(i), 120000)
	}
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
				i := n.Add(1)
				body := append([]byte(fmt.Sprintf("%d-", i)), bodies[i%256]...)
				if _, err := c.Put(context.Background(), body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkGet measures GETs of 120000-byte preimages (hot: from the read cache) over
// loopback HTTP from 32 concurrent clients.
func BenchmarkGet(b *testing.B) {
	s, err := New(Config{Addr: "127.0.0.1:0", Primary: store.NewMemory(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	c, _ := altda.NewClient(altda.ClientConfig{URL: s.URL()})
	comms := make([]altda.Commitment, 256)
	for i := range comms {
		if comms[i], err = c.Put(context.Background(), frame(byte(i), 120000)); err != nil {
			b.Fatal(err)
		}
	}
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
				if _, err := c.Get(context.Background(), comms[n.Add(1)%256]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
