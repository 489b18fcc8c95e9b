package settings

import (
	"testing"

	"github.com/latchkey/latchkey/internal/dbtest"
)

// TestColumns: the plain reads scan every column of their models.
func TestColumns(t *testing.T) {
	dbtest.CheckColumns(t, &Installation{}, InstallationColumns)
	dbtest.CheckColumns(t, &Definition{}, definitionColumns)
}
