package models

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The index registry: each model file declares its collection's indexes in an init func with
// RegisterIndexes, and Open creates them all (EnsureIndexes is idempotent).
var (
	indexMu  sync.Mutex
	indexReg = map[string][]mongo.IndexModel{}
)

// RegisterIndexes declares indexes for a collection. Give every index an explicit name
// (options.Index().SetName) so that re-creating it at the next start is a no-op.
func RegisterIndexes(collection string, idx ...mongo.IndexModel) {
	indexMu.Lock()
	defer indexMu.Unlock()
	indexReg[collection] = append(indexReg[collection], idx...)
}

// RegisteredCollections lists the collections that declared indexes, sorted.
func RegisteredCollections() []string {
	indexMu.Lock()
	defer indexMu.Unlock()
	names := make([]string, 0, len(indexReg))
	for n := range indexReg {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnsureIndexes creates every registered index that does not exist yet (by name). Collections are
// created implicitly. Existing indexes are not sent again: FerretDB v1.24 (SQLite) crashes the
// connection when createIndexes repeats an existing compound index, which would break every restart.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	for _, coll := range RegisteredCollections() {
		indexMu.Lock()
		idx := append([]mongo.IndexModel(nil), indexReg[coll]...)
		indexMu.Unlock()
		have, err := s.indexNames(ctx, coll)
		if err != nil {
			return fmt.Errorf("models: list indexes of %s: %w", coll, err)
		}
		missing := idx[:0]
		for _, m := range idx {
			name := indexName(m)
			if name == "" {
				return fmt.Errorf("models: an index of %s has no name", coll)
			}
			if !have[name] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if _, err := s.db.Collection(coll).Indexes().CreateMany(ctx, missing); err != nil {
			return fmt.Errorf("models: indexes of %s: %w", coll, err)
		}
	}
	return nil
}

func (s *Store) indexNames(ctx context.Context, coll string) (map[string]bool, error) {
	cur, err := s.db.Collection(coll).Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(specs))
	for _, sp := range specs {
		names[sp.Name] = true
	}
	return names, nil
}

// indexName reads the name set with options.Index().SetName.
func indexName(m mongo.IndexModel) string {
	if m.Options == nil {
		return ""
	}
	var o options.IndexOptions
	for _, set := range m.Options.List() {
		_ = set(&o)
	}
	if o.Name == nil {
		return ""
	}
	return *o.Name
}
