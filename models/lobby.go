package models

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// LobbiesCollection holds the lobbies (EVENTS.md, Lobby). The services of issue 4 own the queries.
const LobbiesCollection = "lobbies"

// Lobby statuses.
const (
	LobbyForming = "forming"
	LobbyReady   = "ready"
	LobbyActive  = "active"
	LobbyClosed  = "closed"
)

// Lobby member statuses.
const (
	MemberJoined = "joined"
	MemberLeft   = "left"
	MemberKicked = "kicked"
)

// Capacity bounds the number of active members.
type Capacity struct {
	Min int `bson:"min" json:"min"`
	Max int `bson:"max" json:"max"`
}

// LobbyMember is one member's state.
type LobbyMember struct {
	UserID      bson.ObjectID `bson:"userId"`
	IsHost      bool          `bson:"isHost"`
	ReadyStatus bool          `bson:"readyStatus"`
	Status      string        `bson:"status"`
	JoinedAt    time.Time     `bson:"joinedAt"`
	LeftAt      *time.Time    `bson:"leftAt,omitempty"`
}

// Lobby is a group of players. Members is a map keyed by user id hex, so one member is changed with
// `$set: {"members.<id>.readyStatus": true}` (FerretDB v1 has no positional `$`); concurrent changes go
// through UpdateVersioned. ActiveMemberIDs mirrors the members whose status is joined, for the
// "does this user sit in an open lobby" query.
type Lobby struct {
	ID              bson.ObjectID           `bson:"_id"`
	GameID          string                  `bson:"gameId"`
	GameMode        string                  `bson:"gameMode"`
	HostID          bson.ObjectID           `bson:"hostId"`
	Status          string                  `bson:"status"`
	Visibility      string                  `bson:"visibility"`
	Capacity        Capacity                `bson:"capacity"`
	Settings        map[string]any          `bson:"settings,omitempty"`
	Members         map[string]*LobbyMember `bson:"members"`
	ActiveMemberIDs []bson.ObjectID         `bson:"activeMemberIds"`
	MatchRequestIDs []bson.ObjectID         `bson:"matchRequestIds,omitempty"`
	CreatedAt       time.Time               `bson:"createdAt"`
	UpdatedAt       time.Time               `bson:"updatedAt"`
	ReadyAt         *time.Time              `bson:"readyAt,omitempty"`
	StartedAt       *time.Time              `bson:"startedAt,omitempty"`
	ClosedAt        *time.Time              `bson:"closedAt,omitempty"`
	Version         int64                   `bson:"version"`
}

// CurrentVersion implements Versioned.
func (l *Lobby) CurrentVersion() int64 { return l.Version }

func init() {
	RegisterIndexes(LobbiesCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "activeMemberIds", Value: 1}, {Key: "status", Value: 1}},
			Options: options.Index().SetName("active_member_status")},
		mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "gameId", Value: 1}, {Key: "gameMode", Value: 1}},
			Options: options.Index().SetName("status_game")},
	)
}

// LobbySeatsCollection holds one seat per user who sits in an open lobby. Its _id is the user id, so
// the unique _id index makes "a user sits in at most one open lobby" atomic also across server nodes:
// a second seat for the same user fails with a duplicate key.
const LobbySeatsCollection = "lobby_seats"

// LobbySeat says which open lobby a user sits in. The lobby service claims it before the lobby
// document lists the user as joined and releases it after the user left, was kicked or the lobby closed.
type LobbySeat struct {
	UserID    bson.ObjectID `bson:"_id"`
	LobbyID   bson.ObjectID `bson:"lobbyId"`
	CreatedAt time.Time     `bson:"createdAt"`
}

func init() {
	RegisterIndexes(LobbySeatsCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "lobbyId", Value: 1}}, Options: options.Index().SetName("lobby")})
	RegisterIndexes(LobbiesCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "updatedAt", Value: 1}},
			Options: options.Index().SetName("status_updated")})
}
