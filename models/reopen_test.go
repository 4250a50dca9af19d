package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/services/errs"
)

// Restarting on the same data dir must work: `make run` twice. (FerretDB v1.24 breaks the connection
// when createIndexes repeats existing compound indexes; EnsureIndexes only sends missing ones.)
func TestReopenSameDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().UTC()
	for round := 0; round < 3; round++ {
		s, err := Open(ctx, Config{DataDir: dir})
		if err != nil {
			t.Fatalf("open #%d: %v", round, err)
		}
		u := &User{Username: "reopen" + string(rune('a'+round)), Email: "reopen" + string(rune('a'+round)) + "@example.com"}
		if err := NewUsers(s).Create(ctx, u); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		chatID := bson.NewObjectID().Hex()
		if _, err := s.Collection(ChatsCollection).InsertOne(ctx, Chat{ID: chatID, Type: ChatDirect, Key: chatID,
			Participants: []bson.ObjectID{u.ID}, LastMessageAt: &now, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatalf("round %d chat: %v", round, err)
		}
		if _, err := s.Collection(MessagesCollection).InsertOne(ctx, Message{ID: bson.NewObjectID(), ChatID: chatID,
			SenderID: u.ID, Content: "hi", ContentType: ContentText, CreatedAt: now}); err != nil {
			t.Fatalf("round %d message: %v", round, err)
		}
		n, err := s.Collection(ChatsCollection).CountDocuments(ctx, bson.M{"participants": u.ID})
		if err != nil || n != 1 {
			t.Fatalf("round %d chats by participant: %d %v", round, n, err)
		}
		users, err := s.Collection(UsersCollection).CountDocuments(ctx, bson.M{})
		if err != nil || users != int64(round+1) {
			t.Fatalf("round %d: %d users (%v): data did not survive the restart", round, users, err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A process killed between FerretDB creating a database file and its metadata table leaves an empty
// file that FerretDB refuses to start on ("no such table: _ferretdb_collections"); Open removes it
// (it holds nothing) and starts. A file with tables but no metadata is left alone and named.
func TestOpenAfterInterruptedDatabaseCreation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// What the kill leaves: the file SQLite created, nothing in it.
	if err := os.WriteFile(filepath.Join(dir, "maoga.sqlite"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Config{DataDir: dir, Database: "maoga"})
	if err != nil {
		t.Fatalf("open after an interrupted first start: %v", err)
	}
	if err := NewUsers(s).Create(ctx, &User{Username: "afterkill", Email: "afterkill@example.com"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(ctx)
	s, err = Open(ctx, Config{DataDir: dir, Database: "maoga"})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if n, _ := s.Collection(UsersCollection).CountDocuments(ctx, bson.M{}); n != 1 {
		t.Fatalf("%d users after reopening: the repair touched a good database", n)
	}
	_ = s.Close(ctx)

	// Not a FerretDB file: refused with its name, not deleted.
	other := t.TempDir()
	path := filepath.Join(other, "stranger.sqlite")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE precious (x INT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, Config{DataDir: other}); err == nil || !strings.Contains(err.Error(), "stranger.sqlite") {
		t.Fatalf("want an error naming the foreign file, got %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the foreign file was touched: %v", err)
	}
}

// The states a kill inside FerretDB's multi-step schema changes leaves (see embedded_repair.go), each
// of which used to stop every later start: an index created but not recorded, a collection table
// created but not recorded, a collection recorded before its _id index. Open repairs them and keeps
// the data.
func TestOpenAfterInterruptedSchemaChanges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, Config{DataDir: dir, Database: "maoga"})
	if err != nil {
		t.Fatal(err)
	}
	if err := NewUsers(s).Create(ctx, &User{Username: "keeper", Email: "keeper@example.com"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(ctx)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "maoga.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	table := func(coll string) string {
		var name string
		if err := db.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&name); err != nil {
			t.Fatalf("table of %s: %v", coll, err)
		}
		return name
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// 1. users: the SQLite index username_lower_unique exists, the metadata forgot it.
	var settings string
	users := table(UsersCollection)
	if err := db.QueryRow(`SELECT settings FROM _ferretdb_collections WHERE table_name = ?`, users).Scan(&settings); err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	_ = json.Unmarshal([]byte(settings), &st)
	var kept []any
	for _, ix := range st["indexes"].([]any) {
		if ix.(map[string]any)["name"] != "username_lower_unique" {
			kept = append(kept, ix)
		}
	}
	st["indexes"] = kept
	raw, _ := json.Marshal(st)
	exec(`UPDATE _ferretdb_collections SET settings = ? WHERE table_name = ?`, string(raw), users)
	// 2. lobby_seats: its table exists, its metadata row does not.
	exec(`DELETE FROM _ferretdb_collections WHERE table_name = ?`, table(LobbySeatsCollection))
	// 3. chats: recorded with empty settings (no _id index), as right after the metadata insert.
	chats := table(ChatsCollection)
	exec(`UPDATE _ferretdb_collections SET settings = '{}' WHERE table_name = ?`, chats)
	for _, ix := range []string{"_id_", "key_unique", "participant_recent"} {
		exec(fmt.Sprintf(`DROP INDEX %q`, chats+"_"+ix))
	}
	db.Close()

	s, err = Open(ctx, Config{DataDir: dir, Database: "maoga"})
	if err != nil {
		t.Fatalf("open after interrupted schema changes: %v", err)
	}
	defer s.Close(ctx)
	if n, _ := s.Collection(UsersCollection).CountDocuments(ctx, bson.M{}); n != 1 {
		t.Fatalf("%d users: data lost by the repair", n)
	}
	if err := NewUsers(s).Create(ctx, &User{Username: "KEEPER", Email: "other@example.com"}); !errs.Is(err, errs.CodeConflict) {
		t.Fatalf("username uniqueness after the repair: %v", err)
	}
	seat := LobbySeat{UserID: bson.NewObjectID(), LobbyID: bson.NewObjectID()}
	if _, err := s.Collection(LobbySeatsCollection).InsertOne(ctx, seat); err != nil {
		t.Fatalf("lobby_seats after the repair: %v", err)
	}
	if _, err := s.Collection(LobbySeatsCollection).InsertOne(ctx, seat); !IsDuplicateKey(err) {
		t.Fatalf("a second seat for one user: %v (the _id index is what keeps a user in one lobby)", err)
	}
	c := Chat{ID: "lobby:x", Type: ChatLobby, Key: "lobby:x"}
	if _, err := s.Collection(ChatsCollection).InsertOne(ctx, c); err != nil {
		t.Fatalf("chats after the repair: %v", err)
	}
	if _, err := s.Collection(ChatsCollection).InsertOne(ctx, c); !IsDuplicateKey(err) {
		t.Fatalf("duplicate chat _id accepted after the repair: %v", err)
	}
}
