// Package storejournal is the events.Journal kept in the store (collection "event_journal"), shared by
// every node of a cluster: deliveries a node journaled (a burst, a failed handler, a shutdown) are
// run by whichever node takes them first, also after the node that saved them is gone.
//
// Queries work on MongoDB and FerretDB v1 alike: one document per delivery, leases taken with a
// conditional update on the lease's old value (no transactions, no positional updates).
package storejournal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/events"
)

// Collection is where the entries are kept.
const Collection = "event_journal"

func init() {
	models.RegisterIndexes(Collection, mongo.IndexModel{
		Keys:    bson.D{{Key: "handler", Value: 1}, {Key: "savedAt", Value: 1}},
		Options: options.Index().SetName("handler_savedAt"),
	})
}

// never is the "no time" of notBefore and leaseUntil: the epoch, which every store orders first.
var never = time.Unix(0, 0).UTC()

// doc is one stored delivery.
type doc struct {
	ID         string    `bson:"_id"` // handler + "|" + event id: one entry per delivery
	Handler    string    `bson:"handler"`
	EventID    string    `bson:"eventId"`
	Name       string    `bson:"name"`
	Data       string    `bson:"data"` // the event's JSON, kept as text so it comes back byte for byte
	Origin     string    `bson:"origin"`
	At         time.Time `bson:"at"`
	Attempts   int       `bson:"attempts"`
	NotBefore  time.Time `bson:"notBefore"`
	LeaseUntil time.Time `bson:"leaseUntil"`
	LastError  string    `bson:"lastError,omitempty"`
	SavedAt    time.Time `bson:"savedAt"`
}

func key(handler, eventID string) string { return handler + "|" + eventID }

// Journal is the stored journal.
type Journal struct {
	c   *mongo.Collection
	now func() time.Time
}

// New returns the journal kept in store.
func New(store *models.Store) *Journal {
	return &Journal{c: store.Collection(Collection), now: time.Now}
}

// Save implements events.Journal. Entries saved already (another node spilled the same delivery) are
// kept as they are.
func (j *Journal) Save(ctx context.Context, entries []events.JournalEntry) error {
	if len(entries) == 0 {
		return nil
	}
	now := j.now().UTC()
	docs := make([]any, 0, len(entries))
	for _, e := range entries {
		docs = append(docs, doc{
			ID: key(e.Handler, e.Event.ID), Handler: e.Handler, EventID: e.Event.ID, Name: e.Event.Name,
			Data: string(e.Event.Data), Origin: e.Event.Origin, At: e.Event.At.UTC(), Attempts: e.Attempts,
			NotBefore: orNever(e.NotBefore), LeaseUntil: never, LastError: e.LastError, SavedAt: now,
		})
	}
	_, err := j.c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("storejournal: save %d entries: %w", len(entries), err)
	}
	return nil
}

// onlyDuplicates reports whether every write error of an insert is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// Take implements events.Journal: it reads due candidates, then leases each with an update
// conditioned on the lease it read, so that of two nodes taking at once only one gets an entry.
func (j *Journal) Take(ctx context.Context, handler string, limit int, lease time.Duration) ([]events.JournalEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := j.now().UTC()
	cur, err := j.c.Find(ctx, bson.M{"handler": handler, "notBefore": bson.M{"$lte": now}, "leaseUntil": bson.M{"$lte": now}},
		options.Find().SetSort(bson.D{{Key: "savedAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("storejournal: take: %w", err)
	}
	var cands []doc
	if err := cur.All(ctx, &cands); err != nil {
		return nil, fmt.Errorf("storejournal: take: %w", err)
	}
	until := now.Add(lease)
	out := make([]events.JournalEntry, 0, len(cands))
	for _, d := range cands {
		// FerretDB v1 applies a conditional update as read-then-write; models.LockDoc makes it atomic
		// within this process (across processes sharing one FerretDB a delivery may run twice, which
		// ClusterOnce handlers tolerate; MongoDB needs no lock).
		unlock := models.LockDoc(Collection, d.ID)
		res, err := j.c.UpdateOne(ctx, bson.M{"_id": d.ID, "leaseUntil": d.LeaseUntil},
			bson.M{"$set": bson.M{"leaseUntil": until}, "$inc": bson.M{"attempts": 1}})
		unlock()
		if err != nil {
			if len(out) > 0 {
				break // keep what is leased already; the rest stays due
			}
			return nil, fmt.Errorf("storejournal: lease: %w", err)
		}
		if res.ModifiedCount != 1 {
			continue // another node took it
		}
		out = append(out, events.JournalEntry{
			Handler:   d.Handler,
			Event:     events.Event{Name: d.Name, ID: d.EventID, Data: []byte(d.Data), Origin: d.Origin, At: d.At},
			Attempts:  d.Attempts + 1,
			NotBefore: fromNever(d.NotBefore),
			LastError: d.LastError,
		})
	}
	return out, nil
}

// Release implements events.Journal.
func (j *Journal) Release(ctx context.Context, handler, eventID string, notBefore time.Time, lastError string) error {
	set := bson.M{"leaseUntil": never, "notBefore": orNever(notBefore)}
	if lastError != "" {
		set["lastError"] = lastError
	}
	defer models.LockDoc(Collection, key(handler, eventID))()
	if _, err := j.c.UpdateOne(ctx, bson.M{"_id": key(handler, eventID)}, bson.M{"$set": set}); err != nil {
		return fmt.Errorf("storejournal: release: %w", err)
	}
	return nil
}

// Done implements events.Journal.
func (j *Journal) Done(ctx context.Context, handler, eventID string) error {
	defer models.LockDoc(Collection, key(handler, eventID))()
	if _, err := j.c.DeleteOne(ctx, bson.M{"_id": key(handler, eventID)}); err != nil {
		return fmt.Errorf("storejournal: done: %w", err)
	}
	return nil
}

// Len counts the entries (for tests and the operator).
func (j *Journal) Len(ctx context.Context) (int64, error) {
	return j.c.CountDocuments(ctx, bson.M{})
}

func orNever(t time.Time) time.Time {
	if t.IsZero() || t.Before(never) {
		return never
	}
	return t.UTC().Truncate(time.Millisecond)
}

func fromNever(t time.Time) time.Time {
	if !t.After(never) {
		return time.Time{}
	}
	return t
}

var _ events.Journal = (*Journal)(nil)
