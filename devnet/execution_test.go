package devnet

import "testing"

// TestEngineTracksTheLastBuilds checks that the Engine API wrapper keeps no more builds
// than op-geth does, and that ending them leaves none: it is bounded however long the
// chain runs.
func TestEngineTracksTheLastBuilds(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	l2, m := startTestL2(t, l1, HashArchive)
	tracker := l2.client.engine
	if tracker == nil {
		t.Fatal("the L2 serves the Engine API without the build tracker")
	}
	count := func() int {
		tracker.mu.Lock()
		defer tracker.mu.Unlock()
		return len(tracker.builds)
	}
	for i := range maxTrackedBuilds + 5 {
		if _, err := m.Mine(); err != nil {
			t.Fatal(err)
		}
		if got, want := count(), min(i+1, maxTrackedBuilds); got != want {
			t.Fatalf("after %d builds the tracker holds %d, want %d", i+1, got, want)
		}
	}
	tracker.endBuilds()
	if n := count(); n != 0 {
		t.Fatalf("%d builds tracked after ending them", n)
	}
}
