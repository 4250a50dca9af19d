package models

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// ErrConcurrentUpdate is the cause inside the CONFLICT error a versioned update returns when the
// document changed between read and write (errors.Is(err, ErrConcurrentUpdate)).
var ErrConcurrentUpdate = errors.New("document was modified concurrently")

// DefaultUpdateAttempts is how often UpdateVersioned re-reads and retries before giving up.
const DefaultUpdateAttempts = 8

// Versioned is a document with an optimistic-concurrency counter stored as `version`.
type Versioned interface {
	// CurrentVersion is the version the document had when it was read.
	CurrentVersion() int64
}

// IsDuplicateKey reports a unique-index violation (MongoDB and FerretDB both answer code 11000).
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// IsNoDocuments reports that a find matched nothing.
func IsNoDocuments(err error) bool { return errors.Is(err, mongo.ErrNoDocuments) }

// ConflictOnDuplicate turns a unique-index violation into errs CONFLICT with message, other errors
// into INTERNAL; nil stays nil.
func ConflictOnDuplicate(err error, message string) error {
	if err == nil {
		return nil
	}
	if IsDuplicateKey(err) {
		return errs.Wrap(errs.CodeConflict, message, err)
	}
	return errs.Internal(err)
}

// UpdateIfVersion applies update to the document with _id id only while its version is still
// version, and increments the version. It returns the updated document decoded into out (may be nil).
// A missing document is NOT_FOUND; a changed one is CONFLICT wrapping ErrConcurrentUpdate.
func UpdateIfVersion(ctx context.Context, coll *mongo.Collection, id any, version int64, update bson.M, out any) error {
	defer LockDoc(coll.Name(), id)()
	upd := withVersionBump(update)
	res := coll.FindOneAndUpdate(ctx, bson.M{"_id": id, "version": version}, upd,
		options.FindOneAndUpdate().SetReturnDocument(options.After))
	err := res.Err()
	if err == nil {
		if out != nil {
			if err := res.Decode(out); err != nil {
				return errs.Internal(fmt.Errorf("decode %s: %w", coll.Name(), err))
			}
		}
		return nil
	}
	if !IsNoDocuments(err) {
		if IsDuplicateKey(err) {
			return errs.Wrap(errs.CodeConflict, "duplicate value", err)
		}
		return errs.Internal(err)
	}
	n, cerr := coll.CountDocuments(ctx, bson.M{"_id": id})
	if cerr != nil {
		return errs.Internal(cerr)
	}
	if n == 0 {
		return errs.NotFound(coll.Name() + " not found")
	}
	return errs.Wrap(errs.CodeConflict, ErrConcurrentUpdate.Error(), ErrConcurrentUpdate)
}

// UpdateVersioned is read-modify-write with retries: it loads the document with _id id into a fresh T,
// asks mutate for the update to apply (mutate may return an *errs.Error to refuse, e.g. "lobby full"),
// applies it conditionally on the version it read, and starts over when another writer came first.
// It returns the document as stored after the update. attempts <= 0 means DefaultUpdateAttempts.
func UpdateVersioned[T any, PT interface {
	*T
	Versioned
}](ctx context.Context, coll *mongo.Collection, id any, attempts int, mutate func(doc PT) (bson.M, error)) (PT, error) {
	if attempts <= 0 {
		attempts = DefaultUpdateAttempts
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		var cur T
		if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&cur); err != nil {
			if IsNoDocuments(err) {
				return nil, errs.NotFound(coll.Name() + " not found")
			}
			return nil, errs.Internal(err)
		}
		doc := PT(&cur)
		update, err := mutate(doc)
		if err != nil {
			return nil, err
		}
		if len(update) == 0 { // nothing to change
			return doc, nil
		}
		var next T
		err = UpdateIfVersion(ctx, coll, id, doc.CurrentVersion(), update, &next)
		if err == nil {
			return PT(&next), nil
		}
		if !errors.Is(err, ErrConcurrentUpdate) {
			return nil, err
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, errs.Internal(ctx.Err())
		}
	}
	return nil, lastErr
}

// FerretDB v1 does not apply an update atomically: it reads the matching documents, changes them in
// Go and writes each back whole by _id. Two conditional updates of one document can therefore both
// "match" the old version. The embedded store is only ever used by this one process, so a process-wide
// lock per document makes check-and-write atomic there; against MongoDB the lock is merely redundant.
// Every write path in this package that changes an existing document takes it.
var docStripes [256]sync.Mutex

// LockDoc locks (collection, id) in this process and returns the unlock func. Hold it around any
// write that changes an existing document (updateOne/findOneAndUpdate/$set/$inc ...) when another
// writer may change the same document: on FerretDB v1 concurrent updates of one document otherwise lose
// each other's fields. Never take a second LockDoc while holding one (stripes may coincide).
func LockDoc(collection string, id any) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(collection))
	_, _ = fmt.Fprint(h, id)
	m := &docStripes[h.Sum32()%uint32(len(docStripes))]
	m.Lock()
	return m.Unlock
}

// withVersionBump copies update and adds {$inc: {version: 1}} (merged into an existing $inc).
func withVersionBump(update bson.M) bson.M {
	out := make(bson.M, len(update)+1)
	for k, v := range update {
		out[k] = v
	}
	inc := bson.M{}
	switch cur := update["$inc"].(type) {
	case bson.M:
		for k, v := range cur {
			inc[k] = v
		}
	case map[string]any:
		for k, v := range cur {
			inc[k] = v
		}
	case bson.D:
		for _, e := range cur {
			inc[e.Key] = e.Value
		}
	}
	inc["version"] = 1
	out["$inc"] = inc
	return out
}

// ParseID parses a hex ObjectID as ids travel in URLs and payloads.
func ParseID(s string) (bson.ObjectID, bool) {
	id, err := bson.ObjectIDFromHex(s)
	return id, err == nil
}
