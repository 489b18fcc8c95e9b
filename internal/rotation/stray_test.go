package rotation

import (
	"context"
	"fmt"
	"testing"
)

// TestStrayKeys hides values sealed with keys outside the ring among more
// rows than one query reads, beside values that are not sealed values at
// all, and a row outside the column's condition that looks sealed.
func TestStrayKeys(t *testing.T) {
	f := newFixture(t, 2*strayBatch+10) // sealed with k1
	// Rows 0 to 199 are in primary key order (a00 to a99).
	k9, k0 := strayBatch+50, strayBatch+70
	f.set(f.keys[k9], f.seal(cipherOf(t, "k9"), f.keys[k9], "x"))
	f.set(f.keys[k9+10], f.seal(cipherOf(t, "k9"), f.keys[k9+10], "x"))
	f.set(f.keys[k0], f.seal(cipherOf(t, "k0"), f.keys[k0], "x"))
	f.set(f.keys[3], "not sealed at all")
	f.set(f.keys[4], "v1:")
	if err := f.db.Exec("INSERT INTO things (a, b, value, sealed) VALUES ('zz', 'unsealed', 'v1:k7:looks-sealed', ?)", false).Error; err != nil {
		t.Fatal(err)
	}
	row := func(i int) string { return fmt.Sprintf("a=%q b=%q", f.keys[i][0], f.keys[i][1]) }

	tests := []struct {
		ring []string
		want []Stray
	}{
		{[]string{"k1"}, []Stray{
			{KeyID: "k9", Column: "things.value", Row: row(k9)},
			{KeyID: "k0", Column: "things.value", Row: row(k0)},
		}},
		{[]string{"k1", "k0"}, []Stray{{KeyID: "k9", Column: "things.value", Row: row(k9)}}},
		{[]string{"k9", "k0", "k1"}, nil},
		{[]string{"k0", "k9"}, []Stray{{KeyID: "k1", Column: "things.value", Row: row(0)}}},
		// The first query returns a full batch of k1's values; the next,
		// after it, no longer asks for them.
		{nil, []Stray{
			{KeyID: "k1", Column: "things.value", Row: row(0)},
			{KeyID: "k9", Column: "things.value", Row: row(k9)},
			{KeyID: "k0", Column: "things.value", Row: row(k0)},
		}},
	}
	for _, tt := range tests {
		got, err := StrayKeys(context.Background(), f.db.DB, tt.ring, things)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ring %v: strays = %v, want %v", tt.ring, got, tt.want)
		}
	}
	// A stray found in one column is not reported again for the next.
	got, err := StrayKeys(context.Background(), f.db.DB, []string{"k1", "k9"}, things, things)
	if err != nil || len(got) != 1 || got[0].KeyID != "k0" {
		t.Errorf("two columns: strays = %v, %v; want k0 once", got, err)
	}
	if _, err := StrayKeys(context.Background(), f.db.DB, nil, Column{Table: "things; --", Keys: []string{"a"}, Value: "value", AAD: things.AAD}); err == nil {
		t.Error("a malformed column was accepted")
	}
}
