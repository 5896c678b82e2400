package pebblestore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/altda/store/storetest"
)

func TestContract(t *testing.T) {
	s, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Run(t, s)
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("k"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, []byte("k"))
	if err != nil || !bytes.Equal(got, []byte("value")) {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
}

func TestEachByPrefix(t *testing.T) {
	s, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, k := range []string{"a\x001", "a\x002", "b\x001", "a\xff"} {
		if err := s.Put(ctx, []byte(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.Each([]byte("a\x00"), func(k, _ []byte) bool { got = append(got, string(k)); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a\x001" || got[1] != "a\x002" {
		t.Fatalf("prefix a\\x00 listed %q", got)
	}
	if err := s.Delete([]byte("a\x001")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, []byte("a\x001")); ok {
		t.Fatal("deleted key still there")
	}
}
