package oauthconfig

import (
	"testing"

	"github.com/latchkey/latchkey/internal/dbtest"
)

// TestColumns: the plain read scans every column of the model.
func TestColumns(t *testing.T) {
	dbtest.CheckColumns(t, &Config{}, Columns)
}
