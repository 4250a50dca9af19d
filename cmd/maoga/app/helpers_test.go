package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/services/auth"
)

func registerInput(prefix string) auth.RegisterInput {
	n := uniqueName(prefix)
	return auth.RegisterInput{Username: n, Email: n + "@example.com", Password: "password123"}
}

func dialURL(t *testing.T, url, token string) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, url, clienttest.Options{Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
