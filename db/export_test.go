package db

import "github.com/jmoiron/sqlx"

// SQL exposes the pool to this package's tests, which set up and break rows by hand.
func (s *Store) SQL() *sqlx.DB { return s.db }
