package database

import (
	"context"
	"database/sql"
	"encoding/json"

	"gorm.io/gorm"
)

// Query runs query, a read written in SQL with ? placeholders, and calls
// scan for each row. It is for the few reads of the call path that run on
// a cache miss: one statement reads what several stores keep, and rows are
// scanned by database/sql into the destinations below, without GORM's
// reflection. The statement still goes through GORM's row callback, so
// that a read whose connection broke is tried again once, outages are
// errs.Unavailable, and tests count it. On PostgreSQL, pgx prepares the
// statement once per connection and reuses it.
func Query(ctx context.Context, db *gorm.DB, scan func(*sql.Rows) error, query string, args ...any) error {
	tx := db.WithContext(ctx).Raw(query, args...)
	rows, err := tx.Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return tx.AddError(err) // translated as GORM's own errors are
	}
	return nil
}

// Null scans a column into p, NULL as T's zero value: for the columns of
// a LEFT JOIN that may have no row.
func Null[T any](p *T) sql.Scanner { return null[T]{p} }

type null[T any] struct{ p *T }

func (n null[T]) Scan(src any) error {
	var v sql.Null[T]
	if err := v.Scan(src); err != nil {
		return err
	}
	*n.p = v.V
	return nil
}

// Ptr scans a nullable column into p: nil for NULL.
func Ptr[T any](p **T) sql.Scanner { return ptr[T]{p} }

type ptr[T any] struct{ p **T }

func (n ptr[T]) Scan(src any) error {
	var v sql.Null[T]
	if err := v.Scan(src); err != nil {
		return err
	}
	*n.p = nil
	if v.Valid {
		*n.p = &v.V
	}
	return nil
}

// JSON scans a column that GORM keeps with serializer:json into p, as
// GORM reads it: NULL or an empty text leaves T's zero value.
func JSON[T any](p *T) sql.Scanner { return jsonColumn[T]{p} }

type jsonColumn[T any] struct{ p *T }

func (j jsonColumn[T]) Scan(src any) error {
	var v T
	var b []byte
	switch s := src.(type) {
	case []byte:
		b = s
	case string:
		b = []byte(s)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
	}
	*j.p = v
	return nil
}
