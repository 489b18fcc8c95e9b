package dbtest

import (
	"slices"
	"sync"
	"testing"

	"gorm.io/gorm/schema"
)

// CheckColumns fails tb unless cols, the columns a plain SQL read scans
// into model, are every column GORM reads and writes for it: a field added
// to the model must be added to that read too.
func CheckColumns(tb testing.TB, model any, cols []string) {
	tb.Helper()
	s, err := schema.Parse(model, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		tb.Fatal(err)
	}
	want := slices.Clone(s.DBNames)
	got := slices.Clone(cols)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		tb.Errorf("%s: the plain read scans %v; the model has %v", s.Table, got, want)
	}
}
