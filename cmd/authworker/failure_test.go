package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// caller calls the worker through the Go client as a careful service
// does: each request under a random id of its own, sent again under that
// id, with a new deadline, while it gets no reply in time or the worker
// answers DEADLINE_EXCEEDED.
type caller struct {
	c          *client.Client
	perAttempt time.Duration

	mu  sync.Mutex
	ops map[string]string // request id → operation

	retries  atomic.Int64
	answered atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
	slowest  atomic.Int64 // ns, from the first attempt to the answer
	// onAnswer is called with the number of requests answered so far.
	onAnswer func(n int64)
}

// call runs do under a new request id until it gets an answer other than
// a deadline, or ctx ends.
func (k *caller) call(ctx context.Context, op string, do func(ctx context.Context, id client.RequestOption) error) error {
	return k.callAs(ctx, op, uuid.NewString(), do)
}

// callAs is call under request id id.
func (k *caller) callAs(ctx context.Context, op, id string, do func(ctx context.Context, id client.RequestOption) error) error {
	k.mu.Lock()
	k.ops[id] = op
	k.mu.Unlock()
	if n := k.inFlight.Add(1); n > k.peak.Load() {
		k.peak.Store(n) // racy by one at worst: a figure for the log
	}
	defer k.inFlight.Add(-1)
	start := time.Now()
	for {
		attempt, cancel := context.WithTimeout(ctx, k.perAttempt)
		err := do(attempt, client.WithRequestID(id))
		cancel()
		if ctx.Err() == nil && (domain.ErrorCode(err) == domain.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded)) {
			k.retries.Add(1)
			continue
		}
		// Refused by the hash slots' admission: asked again under the same
		// id once the worker says, as a well-behaved caller does.
		var de *domain.Error
		if ctx.Err() == nil && errors.As(err, &de) && de.Code == domain.CodeRateLimited {
			k.retries.Add(1)
			sleepCtx(ctx, min(max(de.RetryAfter, 10*time.Millisecond), 5*time.Second))
			continue
		}
		took := int64(time.Since(start))
		for old := k.slowest.Load(); took > old && !k.slowest.CompareAndSwap(old, took); old = k.slowest.Load() {
		}
		if n := k.answered.Add(1); k.onAnswer != nil {
			k.onAnswer(n)
		}
		return err
	}
}

// storedStatus reports whether a status is an outcome the worker stores
// and replays byte for byte.
func storedStatus(s schemas.Status) bool {
	switch s {
	case schemas.StatusOK, schemas.StatusInvalid, schemas.StatusUnauthorized, schemas.StatusConflict, schemas.StatusNotFound:
		return true
	}
	return false
}

// replyRecord is one reply read back from the reply topic.
type replyRecord struct {
	correlation string
	value       []byte
	status      schemas.Status
}

// repliesByRequest reads a reply topic to its end and groups the replies by
// request id.
func repliesByRequest(t *testing.T, bootstrap, topic string) map[string][]replyRecord {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]replyRecord{}
	for _, m := range readTopicToEnd(t, bootstrap, topic) {
		resp, err := codec.DecodeResponse(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("reply at partition %d offset %v: %v", m.TopicPartition.Partition, m.TopicPartition.Offset, err)
		}
		out[resp.RequestID] = append(out[resp.RequestID], replyRecord{
			correlation: string(headerValue(m, schemas.HeaderCorrelationID)), value: m.Value, status: resp.Status,
		})
	}
	return out
}

// checkOneLogicalReply checks that every request in ops was answered, and
// that all the stored outcomes among a request's replies (redeliveries and
// its caller's retries alike) are the same bytes. Introspect is not stored:
// its replies need only be OK. It returns how many replies went out more
// than once for one delivery (the same correlation id), how many requests
// their callers sent more than once, and how many requests had two stored
// replies or more to compare.
func checkOneLogicalReply(t *testing.T, ops map[string]string, replies map[string][]replyRecord) (replayed, retried, compared int) {
	t.Helper()
	for id, op := range ops {
		rs := replies[id]
		if len(rs) == 0 {
			t.Errorf("%s %s: no reply on the topic", op, id)
			continue
		}
		perCorrelation := map[string]int{}
		var first []byte
		storedReplies := 0
		for _, r := range rs {
			perCorrelation[r.correlation]++
			switch {
			case r.status == schemas.StatusInternal:
				t.Errorf("%s %s: answered INTERNAL", op, id)
			case op == "introspect":
				if r.status != schemas.StatusOK && r.status != schemas.StatusDeadlineExceeded {
					t.Errorf("%s %s: answered %s", op, id, r.status)
				}
			case storedStatus(r.status):
				storedReplies++
				if first == nil {
					first = r.value
				} else if !bytes.Equal(first, r.value) {
					t.Errorf("%s %s: two stored replies differ (%s): not one logical reply", op, id, r.status)
				}
			}
		}
		if op != "introspect" && first == nil {
			t.Errorf("%s %s: no stored outcome among %d replies", op, id, len(rs))
		}
		for _, n := range perCorrelation {
			replayed += n - 1
		}
		if len(perCorrelation) > 1 {
			retried++
		}
		if storedReplies > 1 {
			compared++
		}
	}
	return replayed, retried, compared
}

// TestMixedLoadSurvivesSIGKILL: a worker process is killed with SIGKILL
// while 1,500 mixed requests are under way (100 accounts each registering,
// logging in, failing a login with a wrong password, refreshing,
// introspecting and logging out, one after the other, beside 900
// introspections of a bogus token), and a new one started in the same
// group. Callers that get no reply within 5 s send the same request again,
// under its id, as the outage (the group's 6 s session timeout, then the
// new worker's start) forces those in flight at the kill to; and each
// account's register and login are sent again at the end, as by a caller
// whose replies were lost. Every request gets one logical reply: its stored outcome,
// byte for byte, however often it went out; and PostgreSQL holds each
// account once and each login's session once, rotated once.
func TestMixedLoadSurvivesSIGKILL(t *testing.T) {
	const (
		accounts = 100
		probers  = 30
		probes   = 30                          // per prober
		total    = 6*accounts + probers*probes // and each account's register and login sent again
		killAt   = 400
	)
	pw := newProcessWorker(t,
		// The killed worker's partitions go to the new one once the group
		// gives it up for dead: the broker's least session timeout.
		"KAFKA_SESSION_TIMEOUT_MS=6000",
		"AUTH_WORKERS=16",
	)
	first := pw.start(t)
	waitFor(t, "the worker to be ready", func() bool { return ready(pw.httpAddr) })
	c := pw.newClient(t, 0)

	killed := make(chan struct{})
	// Shorter than the outage, so that callers in flight at the kill send
	// their requests again.
	k := &caller{c: c, perAttempt: 5 * time.Second, ops: map[string]string{}}
	k.onAnswer = func(n int64) {
		if n == killAt {
			close(killed)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	type account struct{ email, userID, sessionID string }
	accts := make([]account, accounts)
	var wg sync.WaitGroup
	for i := range accts {
		wg.Go(func() {
			a := &accts[i]
			a.email = testenv.Unique(fmt.Sprintf("mixed%d-", i)) + "@example.com"
			fail := func(op string, err error) { t.Errorf("account %d: %s: %v", i, op, err) }
			registerID, loginID := uuid.NewString(), uuid.NewString()
			if err := k.callAs(ctx, "register", registerID, func(ctx context.Context, id client.RequestOption) error {
				reg, err := c.Register(ctx, a.email, password, id)
				if err == nil {
					a.userID = reg.UserID
				}
				return err
			}); err != nil {
				fail("register", err)
				return
			}
			var login *client.LoginResult
			if err := k.callAs(ctx, "login", loginID, func(ctx context.Context, id client.RequestOption) (err error) {
				login, err = c.Login(ctx, a.email, password, id)
				return err
			}); err != nil {
				fail("login", err)
				return
			}
			a.sessionID = login.SessionID
			if err := k.call(ctx, "wrong password", func(ctx context.Context, id client.RequestOption) error {
				_, err := c.Login(ctx, a.email, "not the password of this one", id)
				return err
			}); domain.ErrorCode(err) != domain.CodeUnauthorized {
				fail("wrong password", fmt.Errorf("%v, want UNAUTHORIZED", err))
				return
			}
			var refreshed *client.LoginResult
			if err := k.call(ctx, "refresh", func(ctx context.Context, id client.RequestOption) (err error) {
				refreshed, err = c.Refresh(ctx, login.RefreshToken, id)
				return err
			}); err != nil {
				fail("refresh", err)
				return
			}
			if err := k.call(ctx, "introspect", func(ctx context.Context, id client.RequestOption) error {
				res, err := c.Introspect(ctx, refreshed.AccessToken, "access_token", id)
				if err == nil && !res.Active {
					return errors.New("a live access token is not active")
				}
				return err
			}); err != nil {
				fail("introspect", err)
				return
			}
			if err := k.call(ctx, "logout", func(ctx context.Context, id client.RequestOption) error {
				return c.LogoutWithRefreshToken(ctx, refreshed.RefreshToken, id)
			}); err != nil {
				fail("logout", err)
				return
			}
			// A caller whose replies were lost asks again under the same
			// ids, long after: it gets the stored replies, not new effects.
			if err := k.callAs(ctx, "register", registerID, func(ctx context.Context, id client.RequestOption) error {
				reg, err := c.Register(ctx, a.email, password, id)
				if err == nil && reg.UserID != a.userID {
					return fmt.Errorf("user %s, first answered %s", reg.UserID, a.userID)
				}
				return err
			}); err != nil {
				fail("register again", err)
			}
			if err := k.callAs(ctx, "login", loginID, func(ctx context.Context, id client.RequestOption) error {
				again, err := c.Login(ctx, a.email, password, id)
				if err == nil && (again.SessionID != login.SessionID || again.RefreshToken != login.RefreshToken) {
					return fmt.Errorf("session %s, first answered %s", again.SessionID, login.SessionID)
				}
				return err
			}); err != nil {
				fail("login again", err)
			}
		})
	}
	for p := range probers {
		wg.Go(func() {
			for range probes {
				if err := k.call(ctx, "introspect", func(ctx context.Context, id client.RequestOption) error {
					res, err := c.Introspect(ctx, fmt.Sprintf("bogus-%d", p), "", id)
					if err == nil && res.Active {
						return errors.New("a bogus token is active")
					}
					return err
				}); err != nil {
					t.Errorf("prober %d: introspect: %v", p, err)
					return
				}
			}
		})
	}

	select {
	case <-killed:
	case <-ctx.Done():
		t.Fatal("the first worker never answered enough requests")
	}
	inFlight := k.inFlight.Load()
	first.stop(t, syscall.SIGKILL)
	killedAt := k.answered.Load()
	second := pw.start(t)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	second.stop(t, syscall.SIGTERM)

	replayed, retried, compared := checkOneLogicalReply(t, k.ops, repliesByRequest(t, pw.bootstrap, pw.reply))
	t.Logf("killed after %d of %d requests answered, %d in flight (peak %d); %d requests sent more than once (%d attempts after a timeout, and the %d asked again at the end); %d replies sent again for one delivery; %d requests with several stored replies, all identical; the slowest caller waited %v",
		killedAt, total, inFlight, k.peak.Load(), retried, k.retries.Load(), 2*accounts, replayed, compared, time.Duration(k.slowest.Load()).Round(time.Millisecond))
	if retried == 0 {
		// The group waits out the dead member's 6 s session before the
		// new worker gets its partitions: longer than an attempt.
		t.Errorf("no caller sent a request again, though the outage outlasts an attempt of %v", k.perAttempt)
	}
	if compared < 2*accounts {
		t.Errorf("%d requests had several stored replies to compare, want at least the %d sent again", compared, 2*accounts)
	}
	if len(k.ops) != total {
		t.Errorf("%d requests sent, want %d", len(k.ops), total)
	}

	conn, err := pgx.Connect(ctx, pw.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, a := range accts {
		var users int
		var id string
		if err := conn.QueryRow(ctx, `SELECT count(*), min(id::text) FROM users WHERE email = $1`, a.email).Scan(&users, &id); err != nil {
			t.Fatal(err)
		}
		if users != 1 || id != a.userID {
			t.Errorf("%s: %d users (first %s), want one, %s, the id its Register reply named", a.email, users, id, a.userID)
		}
		var sessions, tokens int
		var sid string
		var revoked bool
		if err := conn.QueryRow(ctx, `
			SELECT count(DISTINCT s.id), min(s.id::text), count(t.token_hash), bool_and(s.revoked_at IS NOT NULL)
			FROM sessions s LEFT JOIN refresh_tokens t ON t.session_id = s.id
			WHERE s.user_id = $1`, a.userID).Scan(&sessions, &sid, &tokens, &revoked); err != nil {
			t.Fatal(err)
		}
		if sessions != 1 || sid != a.sessionID || tokens != 2 || !revoked {
			t.Errorf("%s: %d sessions (first %s) with %d refresh tokens, revoked %v; want its login's session %s, rotated once (2 tokens), logged out",
				a.email, sessions, sid, tokens, revoked, a.sessionID)
		}
	}
}

// TestRebalanceMidLoad: while a worker works through 400 logins, ten per
// account sent back to back under the account's key, beside 600
// introspections, a second worker joins the group, takes part, and leaves
// with SIGTERM. Every request is answered, one logical reply each; each
// account's logins take effect in the order they were sent (their
// sessions' creation times, and their replies' offsets on the reply
// topic, follow the requests' order); and no login opens two sessions.
func TestRebalanceMidLoad(t *testing.T) {
	const (
		accounts      = 40
		loginsPerUser = 10
		probes        = 600
	)
	// The logins are produced all at once, one account's after another's:
	// as many may wait for a hash slot as there are accounts, and they
	// must, not be refused, for the test to follow each account's order.
	pw := newProcessWorker(t, "AUTH_WORKERS=64", "AUTH_HASH_QUEUE=60", "AUTH_HASH_MAX_WAIT=5m")
	pw.start(t)
	waitFor(t, "the first worker to be ready", func() bool { return ready(pw.httpAddr) })
	c := pw.newClient(t, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	emails := make([]string, accounts)
	userIDs := make([]string, accounts)
	var wg sync.WaitGroup
	for i := range emails {
		emails[i] = testenv.Unique(fmt.Sprintf("order%d-", i)) + "@example.com"
		wg.Go(func() {
			var reg *client.RegisterResult
			err := client.RetryRateLimited(ctx, func() (err error) {
				reg, err = c.Register(ctx, emails[i], password)
				return err
			})
			if err != nil {
				t.Errorf("register %d: %v", i, err)
				return
			}
			userIDs[i] = reg.UserID
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]string{}
	loginIDs := make([][]string, accounts) // per account, in the order sent
	var msgs []*kafka.Message
	for n := range loginsPerUser {
		for i, email := range emails {
			id := uuid.NewString()
			ops[id], loginIDs[i] = "login", append(loginIDs[i], id)
			msgs = append(msgs, requestMessage(t, codec, pw.request, pw.reply, email, id, nil, &schemas.Login{Email: email, Password: password}))
		}
		for range probes / loginsPerUser {
			id := uuid.NewString()
			ops[id] = "introspect"
			msgs = append(msgs, requestMessage(t, codec, pw.request, pw.reply, "", id, nil, &schemas.Introspect{Token: fmt.Sprintf("bogus-%d", n)}))
		}
	}
	replies := readReplyLog(t, pw.bootstrap, pw.reply)
	produceAll(t, pw.bootstrap, msgs)

	// The second worker logs every request it handles.
	secondLog := filepath.Join(t.TempDir(), "second.log")
	handled := func() int {
		b, _ := os.ReadFile(secondLog)
		return bytes.Count(b, []byte(`"msg":"request handled"`))
	}
	second := startProcess(t, append(append([]string(nil), pw.env...), "LOG_LEVEL=info", "HTTP_ADDR="+freeAddr(t)), secondLog)
	waitFor(t, "the second worker to handle requests", func() bool { return handled() >= 50 })
	second.stop(t, syscall.SIGTERM)
	byTheSecond := handled()
	answeredAtLeave := replies.answered()

	ids := make([]string, 0, len(ops))
	for id := range ops {
		ids = append(ids, id)
	}
	replies.waitFor(t, ids, 5*time.Minute)
	// Replies sent again are records a worker finished beyond an older
	// one of their partition it had not started when the partition moved:
	// the committed offset stops at the oldest unfinished record.
	replayed, _, _ := checkOneLogicalReply(t, ops, repliesByRequest(t, pw.bootstrap, pw.reply))
	t.Logf("%d requests; the second worker handled %d of them, and left when %d were answered; %d replies sent again for one delivery",
		len(ops), byTheSecond, answeredAtLeave, replayed)

	conn, err := pgx.Connect(ctx, pw.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i, userID := range userIDs {
		// The order each login was sent in, by the session it opened, and
		// where its first reply landed.
		sent := map[string]int{}
		lastOffset, partition := kafka.Offset(-1), int32(-1)
		for n, id := range loginIDs[i] {
			first := replies.replies(id)[0]
			resp := replies.decode(t, first)
			res, ok := resp.Result.(*schemas.LoginResult)
			if !ok {
				t.Fatalf("account %d login %d: answered %s", i, n, resp.Status)
			}
			sent[res.SessionID] = n
			if p := first.TopicPartition.Partition; n > 0 && p != partition {
				t.Fatalf("account %d: login %d answered on partition %d, login %d on %d: replies are keyed by the request's key", i, n, p, n-1, partition)
			}
			partition = first.TopicPartition.Partition
			if first.TopicPartition.Offset <= lastOffset {
				t.Errorf("account %d: login %d answered at offset %v, before login %d's reply at %v", i, n, first.TopicPartition.Offset, n-1, lastOffset)
			}
			lastOffset = first.TopicPartition.Offset
		}
		rows, err := conn.Query(ctx, `SELECT id::text FROM sessions WHERE user_id = $1 ORDER BY created_at, id`, userID)
		if err != nil {
			t.Fatal(err)
		}
		sessions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != loginsPerUser {
			t.Errorf("account %d: %d sessions, want %d, one per login", i, len(sessions), loginsPerUser)
		}
		for n, sid := range sessions {
			if got, ok := sent[sid]; !ok || got != n {
				t.Errorf("account %d: session %d by creation time is login %d's (known: %v), want login %d's", i, n, got, ok, n)
			}
		}
	}
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
