package rotation

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/secret"
)

// Stray is a key id that seals stored values although it is not in the
// ring, and the first row where it was found.
type Stray struct {
	KeyID  string
	Column string // "table.column"
	Row    string // the row's primary key, as in Failure; never the value
}

// strayBatch is how many rows one query of StrayKeys returns. Only values
// sealed with a key outside the ring are read, so in a healthy database
// each column takes one query that returns nothing.
const strayBatch = 100

// StrayKeys walks columns for values sealed with a key whose id is not in
// ring, which no server with that ring can open, and returns one Stray per
// such id, in the order found. Values that are not sealed values at all are
// passed over: they name no key (reencrypt reports them as undecryptable).
//
// It reads every row of each column once, in primary key order, with a
// condition that excludes the ring's keys and each stray id as soon as it
// is found. It returns an error if a column is malformed, or the first
// database error, wrapped with the column's name. Errors never contain
// values.
func StrayKeys(ctx context.Context, db *gorm.DB, ring []string, columns ...Column) ([]Stray, error) {
	for _, c := range columns {
		if err := c.check(); err != nil {
			return nil, err
		}
	}
	var strays []Stray
	for _, c := range columns {
		// Strays found in an earlier column are not looked for again.
		skip := slices.Clone(ring)
		for _, s := range strays {
			skip = append(skip, s.KeyID)
		}
		var cursor []string
		for {
			cond, args := c.notSealedWith(skip...)
			rows, err := readRows(ctx, db, c, cond, args, cursor, strayBatch)
			if err != nil {
				return strays, fmt.Errorf("rotation: %s: %w", c.Name(), err)
			}
			for _, rw := range rows {
				id, ok := secret.KeyID(rw.value)
				if !ok || slices.Contains(skip, id) {
					continue
				}
				skip = append(skip, id)
				strays = append(strays, Stray{KeyID: id, Column: c.Name(), Row: c.describe(rw.key)})
			}
			if len(rows) < strayBatch {
				break
			}
			cursor = rows[len(rows)-1].key
		}
	}
	return strays, nil
}
