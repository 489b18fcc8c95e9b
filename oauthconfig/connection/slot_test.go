package connection

import (
	"testing"
	"time"
)

// TestRenewalSlotRests: with a DatabaseShare below 1, the slot a renewal
// gave back stays taken for a rest before the next renewal gets it; with
// 1, it is free at once.
func TestRenewalSlotRests(t *testing.T) {
	free := func(rf *Refresher) bool {
		select {
		case rf.slots <- struct{}{}:
			<-rf.slots
			return true
		default:
			return false
		}
	}
	for _, share := range []float64{1, 0.5} {
		rf := NewRefresher(nil, nil, nil, nil, "", nil)
		rf.DatabaseShare = share
		rf.busy()
		time.Sleep(20 * time.Millisecond) // the slot's use, rested as long again at 0.5
		rf.idle()
		if got := free(rf); got != (share == 1) {
			t.Errorf("share %v: the slot is free at once: %v", share, got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !free(rf) {
			if time.Now().After(deadline) {
				t.Fatalf("share %v: the slot is still taken", share)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
