package main

import (
	"context"
	"sync"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// newAccount registers and logs in a fresh account through c.
func newAccount(t testing.TB, c *client.Client) (string, *client.LoginResult) {
	t.Helper()
	email := testenv.Unique("life") + "@example.com"
	if _, err := c.Register(context.Background(), email, password); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(context.Background(), email, password)
	if err != nil {
		t.Fatal(err)
	}
	return email, s
}

func active(t *testing.T, c *client.Client, token string) bool {
	t.Helper()
	res, err := c.Introspect(context.Background(), token, "")
	if err != nil {
		t.Fatal(err)
	}
	return res.Active
}

// TestRefreshOverKafka: rotation, the exact retry of a refresh getting the
// same pair, and reuse of a spent token revoking the session.
func TestRefreshOverKafka(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	_, s := newAccount(t, c)

	next, err := c.Refresh(ctx, s.RefreshToken, client.WithRequestID("refresh-1"))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.Refresh(ctx, s.RefreshToken, client.WithRequestID("refresh-1"))
	if err != nil {
		t.Fatalf("the retry of the same refresh: %v, want its stored reply", err)
	}
	if retry.RefreshToken != next.RefreshToken || retry.AccessToken != next.AccessToken {
		t.Error("the retry of the same refresh got another pair")
	}
	if !active(t, c, next.AccessToken) {
		t.Fatal("the new access token is not active")
	}
	if _, err := c.Refresh(ctx, s.RefreshToken); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a spent token under a new request id: %v, want unauthorized", err)
	}
	if active(t, c, next.AccessToken) {
		t.Error("after reuse, the session's access token is still active")
	}
	if _, err := c.Refresh(ctx, next.RefreshToken); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("the successor after reuse: %v, want unauthorized", err)
	}
}

// TestConcurrentRefreshesOverKafka: twenty refreshes with one token under
// twenty request ids: exactly one succeeds, and since the token was in
// several hands the session ends, the winner's new tokens included.
func TestConcurrentRefreshesOverKafka(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	_, s := newAccount(t, c)
	var mu sync.Mutex
	var wins []*client.LoginResult
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := c.Refresh(context.Background(), s.RefreshToken)
			switch domain.ErrorCode(err) {
			case "":
				mu.Lock()
				wins = append(wins, res)
				mu.Unlock()
			case domain.CodeUnauthorized:
			default:
				t.Errorf("refresh: %v, want ok or unauthorized", err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d of 20 concurrent refreshes succeeded, want exactly 1", len(wins))
	}
	if _, err := c.Refresh(context.Background(), wins[0].RefreshToken); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("the winner's refresh token: %v, want unauthorized (the session was revoked for reuse)", err)
	}
	if active(t, c, wins[0].AccessToken) {
		t.Error("the winner's access token is active after reuse ended the session")
	}
}

// TestLogoutOverKafka: Logout makes Introspect inactive at the very next
// request; LogoutAll ends every session.
func TestLogoutOverKafka(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	email, s := newAccount(t, c)
	if err := c.LogoutWithAccessToken(ctx, s.AccessToken); err != nil {
		t.Fatal(err)
	}
	if active(t, c, s.AccessToken) {
		t.Error("the access token is active right after Logout")
	}
	var sessions []*client.LoginResult
	for range 3 {
		s, err := c.Login(ctx, email, password)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	if err := c.LogoutAll(ctx, sessions[0].AccessToken); err != nil {
		t.Fatal(err)
	}
	for i, s := range sessions {
		if active(t, c, s.AccessToken) {
			t.Errorf("session %d survived LogoutAll", i)
		}
	}
}

// TestPasswordResetOverKafka: the code goes to auth.notifications, and
// resetting with it sets the password and ends every session.
func TestPasswordResetOverKafka(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ctx := context.Background()
	email, s := newAccount(t, c)
	if err := c.RequestPasswordReset(ctx, email); err != nil {
		t.Fatal(err)
	}
	if err := c.RequestPasswordReset(ctx, "nobody-"+email); err != nil {
		t.Fatalf("a reset for an unknown address: %v, want the same Done", err)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var code string
	consumeOne(t, w.cfg.Kafka.BootstrapServers, w.cfg.Topics.Notifications, func(m *kafka.Message) bool {
		n, err := codec.DecodeNotification(ctx, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if n.Kind == schemas.NotificationPasswordReset && n.Email == email && n.Code != nil {
			if string(m.Key) != n.UserID {
				t.Errorf("notification keyed %q, want the user id %q", m.Key, n.UserID)
			}
			code = *n.Code
			return true
		}
		return false
	})
	const newPassword = "an entirely new long passphrase"
	if err := c.ResetPassword(ctx, email, code+"x", newPassword); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("reset with a wrong code: %v, want unauthorized", err)
	}
	if err := c.ResetPassword(ctx, email, code, newPassword); err != nil {
		t.Fatal(err)
	}
	if active(t, c, s.AccessToken) {
		t.Error("a session survived the reset")
	}
	if _, err := c.Login(ctx, email, password); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("login with the old password: %v, want unauthorized", err)
	}
	if _, err := c.Login(ctx, email, newPassword); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if err := c.ResetPassword(ctx, email, code, "yet another long passphrase here"); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("the code a second time: %v, want unauthorized", err)
	}
}

// TestAdministrationOverKafka: only admin clients administer accounts; a
// disabled account's sessions end at once.
func TestAdministrationOverKafka(t *testing.T) {
	w := startWorker(t)
	c := w.client(t)
	ops := w.clientAs(t, "ops")
	ctx := context.Background()
	email, s := newAccount(t, c)
	if err := c.DisableUser(ctx, s.UserID); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("a non-admin client disabling: %v, want unauthorized", err)
	}
	spoof := w.clientOn(t, "ops", w.cfg.Topics.Request) // the admin's id, from the shared topic
	if err := spoof.DisableUser(ctx, s.UserID); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("the admin client id claimed on the shared request topic: %v, want invalid", err)
	}
	if err := ops.DisableUser(ctx, s.UserID); err != nil {
		t.Fatal(err)
	}
	if active(t, c, s.AccessToken) {
		t.Error("a disabled account's session is still active")
	}
	if _, err := c.Login(ctx, email, password); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Errorf("login to a disabled account: %v, want unauthorized", err)
	}
	if err := ops.EnableUser(ctx, s.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, email, password); err != nil {
		t.Errorf("login after enable: %v", err)
	}
	if err := ops.DeleteUser(ctx, s.UserID); err != nil {
		t.Fatal(err)
	}
	if err := ops.DeleteUser(ctx, s.UserID); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("deleting again: %v, want not found", err)
	}
}
