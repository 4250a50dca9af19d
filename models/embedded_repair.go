package models

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses ("sqlite")
)

// FerretDB v1 (SQLite) keeps, in every database file, a metadata table that lists each collection's
// SQLite table and its indexes (as JSON "settings"). It changes the schema and that table in separate
// autocommitted steps, so a process killed in between leaves a file FerretDB cannot start on, or a
// collection it cannot use, for good (all seen with the kill test of cmd/maoga):
//
//   - a new database file without the metadata table ("no such table: _ferretdb_collections");
//   - a collection's table created, its metadata row not ("table already exists" on every insert);
//   - a metadata row with empty settings (killed before the `_id_` index was recorded): the collection
//     works but `_id` is no longer unique, and lobby seats rely on that;
//   - an index created in SQLite but not recorded ("index ... already exists" at every start, when
//     the indexes are ensured).
//
// None of these leftovers holds data: FerretDB only writes documents into a collection whose creation
// finished, and an index is derived data. repairInterruptedDatabases removes them before FerretDB opens
// the directory; FerretDB then recreates what is missing on first use (collections, indexes via
// EnsureIndexes). Anything unexpected (a table with rows nobody lists) stops the start with a clear
// error instead of being guessed about.
const (
	ferretMetadataTable = "_ferretdb_collections"
	ferretIDIndex       = "_id_"
)

// repairInterruptedDatabases checks each database file of the embedded store's directory (see above).
func repairInterruptedDatabases(dir string, log *slog.Logger) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return err
	}
	for _, f := range files {
		empty, err := repairDatabaseFile(f, log)
		if err != nil {
			return fmt.Errorf("models: repairing %s after an interrupted write: %w", f, err)
		}
		if empty {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				if err := os.Remove(f + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("models: removing the empty database file %s: %w", f+suffix, err)
				}
			}
			log.Warn("removed an empty database file left by an interrupted start (it held no data)", "file", f)
		}
	}
	return nil
}

// repairDatabaseFile repairs one file; empty reports a file without any table (to be removed).
func repairDatabaseFile(path string, log *slog.Logger) (empty bool, err error) {
	// Read-write, so that a leftover WAL is replayed first, as FerretDB would.
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=rw")
	if err != nil {
		return false, err
	}
	defer db.Close()
	tables, err := names(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return false, err
	}
	if len(tables) == 0 {
		return true, nil
	}
	if !tables[ferretMetadataTable] {
		return false, fmt.Errorf("it has tables but no %s: not a database this server can open; move it out of DATA_DIR", ferretMetadataTable)
	}
	tx, err := db.Begin()
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.Query(fmt.Sprintf("SELECT name, table_name, settings FROM %q", ferretMetadataTable))
	if err != nil {
		return false, err
	}
	var colls []ferretCollection
	for rows.Next() {
		var c ferretCollection
		var settings string
		if err := rows.Scan(&c.name, &c.table, &settings); err != nil {
			rows.Close()
			return false, err
		}
		if err := c.parse(settings); err != nil {
			rows.Close()
			return false, err
		}
		colls = append(colls, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}

	count := func(table string) (int64, error) {
		var n int64
		err := tx.QueryRow(fmt.Sprintf("SELECT count(*) FROM %q", table)).Scan(&n)
		return n, err
	}
	forget := func(c ferretCollection) error {
		_, err := tx.Exec(fmt.Sprintf("DELETE FROM %q WHERE table_name = ?", ferretMetadataTable), c.table)
		return err
	}
	listed := map[string]bool{} // tables of the collections that stay
	for _, c := range colls {
		switch {
		case !tables[c.table]: // a row without its table: nothing to keep
			if err := forget(c); err != nil {
				return false, err
			}
			log.Warn("forgot a collection whose table is missing", "file", path, "collection", c.name)
		case c.hasID:
			listed[c.table] = true
		default:
			// Recorded without its _id index: its creation did not finish, so nothing was written to it.
			n, err := count(c.table)
			if err != nil {
				return false, err
			}
			if n > 0 {
				log.Error("collection without its unique _id index holds documents; left as it is", "file", path, "collection", c.name)
				listed[c.table] = true
				continue
			}
			if _, err := tx.Exec(fmt.Sprintf("DROP TABLE %q", c.table)); err != nil {
				return false, err
			}
			if err := forget(c); err != nil {
				return false, err
			}
			log.Warn("dropped an empty collection whose creation was interrupted; it is created again on first use",
				"file", path, "collection", c.name)
		}
	}
	dropped := map[string]bool{}
	for _, c := range colls {
		if tables[c.table] && !listed[c.table] {
			dropped[c.table] = true
		}
	}
	// Tables no collection lists: created, never recorded.
	for t := range tables {
		if strings.HasPrefix(t, "_ferretdb_") || listed[t] || dropped[t] {
			continue
		}
		n, err := count(t)
		if err != nil {
			return false, err
		}
		if n > 0 {
			return false, fmt.Errorf("table %s holds %d rows but no collection lists it", t, n)
		}
		if _, err := tx.Exec(fmt.Sprintf("DROP TABLE %q", t)); err != nil {
			return false, err
		}
		log.Warn("dropped an empty table of an interrupted collection creation", "file", path, "table", t)
	}
	// Indexes of listed tables that FerretDB does not know about: created, never recorded.
	ixRows, err := tx.Query("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return false, err
	}
	var orphans []string
	for ixRows.Next() {
		var name, table string
		if err := ixRows.Scan(&name, &table); err != nil {
			ixRows.Close()
			return false, err
		}
		for _, c := range colls {
			if c.table == table && listed[table] && !c.indexes[name] {
				orphans = append(orphans, name)
			}
		}
	}
	ixRows.Close()
	if err := ixRows.Err(); err != nil {
		return false, err
	}
	for _, name := range orphans {
		if _, err := tx.Exec(fmt.Sprintf("DROP INDEX %q", name)); err != nil {
			return false, err
		}
		log.Warn("dropped an index whose creation was interrupted; it is created again at start-up", "file", path, "index", name)
	}
	return false, tx.Commit()
}

// ferretCollection is one row of FerretDB's metadata table.
type ferretCollection struct {
	name, table string
	indexes     map[string]bool // SQLite names of the indexes FerretDB recorded: <table>_<index name>
	hasID       bool            // the unique _id index is among them
}

func (c *ferretCollection) parse(settings string) error {
	var s struct {
		Indexes []struct {
			Name string `json:"name"`
		} `json:"indexes"`
	}
	if err := json.Unmarshal([]byte(settings), &s); err != nil {
		return fmt.Errorf("settings of collection %s: %w", c.name, err)
	}
	c.indexes = map[string]bool{}
	for _, ix := range s.Indexes {
		c.indexes[c.table+"_"+ix.Name] = true
		c.hasID = c.hasID || ix.Name == ferretIDIndex
	}
	return nil
}

func names(db *sql.DB, query string) (map[string]bool, error) {
	rows, err := db.Query(query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out[strings.TrimSpace(name)] = true
	}
	return out, rows.Err()
}
