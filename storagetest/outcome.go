package storagetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// RunOutcomeRepositoryTests runs the conformance suite of
// domain.OutcomeRepository. newRepo returns an empty repository, cleaned up
// by t.Cleanup if need be; it is called once per subtest.
func RunOutcomeRepositoryTests(t *testing.T, newRepo func(t *testing.T) domain.OutcomeRepository) {
	tests := []struct {
		name string
		run  func(t *testing.T, outcomes domain.OutcomeRepository)
	}{
		{"SaveAndLoad", testSaveAndLoadOutcome},
		{"ReturnedOutcomeIsACopy", testReturnedOutcomeIsACopy},
		{"DuplicateKeyConflict", testDuplicateOutcomeConflict},
		{"SameRequestIDOtherClient", testSameRequestIDOtherClient},
		{"ExpiredIsNotFound", testExpiredOutcomeIsNotFound},
		{"SaveReplacesExpired", testSaveReplacesExpiredOutcome},
		{"DeleteExpired", testDeleteExpiredOutcomes},
		{"InvalidKey", testInvalidRequestKey},
		{"LongestKey", testLongestRequestKey},
		{"WithoutReply", testOutcomeWithoutReply},
		{"CanceledContext", testOutcomeCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newRepo(t))
		})
	}
}

// NewOutcome returns a successful outcome for a new request of client,
// created at baseTime and kept for a day, with a random reply.
func NewOutcome(client string) domain.Outcome {
	return domain.Outcome{
		Key:           domain.RequestKey{ClientID: client, RequestID: NewUUID()},
		RequestDigest: randomBytes(32),
		Reply:         randomBytes(48),
		CreatedAt:     baseTime,
		ExpiresAt:     baseTime.Add(24 * time.Hour),
	}
}

// saveOutcome stores o.
func saveOutcome(tb testing.TB, outcomes domain.OutcomeRepository, o domain.Outcome) {
	tb.Helper()
	if err := outcomes.SaveOutcome(context.Background(), o); err != nil {
		tb.Fatalf("SaveOutcome: %v", err)
	}
}

// loadOutcome returns the outcome stored for key at now.
func loadOutcome(tb testing.TB, outcomes domain.OutcomeRepository, key domain.RequestKey, now time.Time) domain.Outcome {
	tb.Helper()
	o, err := outcomes.Outcome(context.Background(), key, now)
	if err != nil {
		tb.Fatalf("Outcome(%+v): %v", key, err)
	}
	return o
}

// checkOutcome reports an error unless got is want as stored.
func checkOutcome(tb testing.TB, got, want domain.Outcome) {
	tb.Helper()
	if got.Key != want.Key || got.Code != want.Code || !bytes.Equal(got.Reply, want.Reply) {
		tb.Errorf("outcome = %+v %q %x, want %+v %q %x", got.Key, got.Code, got.Reply, want.Key, want.Code, want.Reply)
	}
	if !bytes.Equal(got.RequestDigest, want.RequestDigest) {
		tb.Errorf("request digest = %x, want %x", got.RequestDigest, want.RequestDigest)
	}
	checkTime(tb, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(tb, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

func testSaveAndLoadOutcome(t *testing.T, outcomes domain.OutcomeRepository) {
	ok := NewOutcome("web")
	ok.Reply = append([]byte{0x00, 0xff, 0x00}, ok.Reply...) // bytes, not text
	failed := NewOutcome("web")
	failed.Code = domain.CodeConflict
	for _, o := range []domain.Outcome{ok, failed} {
		saveOutcome(t, outcomes, o)
	}
	for _, o := range []domain.Outcome{ok, failed} {
		checkOutcome(t, loadOutcome(t, outcomes, o.Key, baseTime), o)
	}
}

func testReturnedOutcomeIsACopy(t *testing.T, outcomes domain.OutcomeRepository) {
	o := NewOutcome("web")
	want := o
	want.Reply = bytes.Clone(o.Reply)
	saveOutcome(t, outcomes, o)
	o.Reply[0] ^= 0xff // the caller's slice, not the stored reply
	got := loadOutcome(t, outcomes, want.Key, baseTime)
	checkOutcome(t, got, want)
	got.Reply[0] ^= 0xff
	checkOutcome(t, loadOutcome(t, outcomes, want.Key, baseTime), want)
}

func testDuplicateOutcomeConflict(t *testing.T, outcomes domain.OutcomeRepository) {
	first := NewOutcome("web")
	saveOutcome(t, outcomes, first)
	second := first
	second.Code, second.Reply = domain.CodeInvalid, randomBytes(48)
	second.CreatedAt = first.ExpiresAt.Add(-time.Microsecond) // the last moment first is kept
	checkCode(t, "SaveOutcome for a stored key", outcomes.SaveOutcome(context.Background(), second), domain.CodeConflict)
	checkOutcome(t, loadOutcome(t, outcomes, first.Key, baseTime), first)
}

func testSameRequestIDOtherClient(t *testing.T, outcomes domain.OutcomeRepository) {
	web := NewOutcome("web")
	cli := NewOutcome("cli")
	cli.Key.RequestID = web.Key.RequestID
	saveOutcome(t, outcomes, web)
	saveOutcome(t, outcomes, cli)
	checkOutcome(t, loadOutcome(t, outcomes, web.Key, baseTime), web)
	checkOutcome(t, loadOutcome(t, outcomes, cli.Key, baseTime), cli)

	_, err := outcomes.Outcome(context.Background(), domain.RequestKey{ClientID: "web", RequestID: NewUUID()}, baseTime)
	checkCode(t, "Outcome of another request", err, domain.CodeNotFound)
	_, err = outcomes.Outcome(context.Background(), domain.RequestKey{ClientID: "mobile", RequestID: web.Key.RequestID}, baseTime)
	checkCode(t, "Outcome of the request id for another client", err, domain.CodeNotFound)
}

// testExpiredOutcomeIsNotFound: an outcome is kept while now is before
// ExpiresAt, compared at the stored precision.
func testExpiredOutcomeIsNotFound(t *testing.T, outcomes domain.OutcomeRepository) {
	o := NewOutcome("web")
	saveOutcome(t, outcomes, o)
	checkOutcome(t, loadOutcome(t, outcomes, o.Key, o.ExpiresAt.Add(-time.Microsecond)), o)
	for _, now := range []time.Time{
		o.ExpiresAt,
		stored(o.ExpiresAt), // the instant as stored, before o.ExpiresAt's nanoseconds
		o.ExpiresAt.Add(time.Hour),
	} {
		_, err := outcomes.Outcome(context.Background(), o.Key, now)
		checkCode(t, "Outcome at "+now.String(), err, domain.CodeNotFound)
	}
}

// testSaveReplacesExpiredOutcome: an expired outcome that is not yet
// deleted does not stop the request from being handled afresh.
func testSaveReplacesExpiredOutcome(t *testing.T, outcomes domain.OutcomeRepository) {
	old := NewOutcome("web")
	saveOutcome(t, outcomes, old)
	retry := old
	retry.Code, retry.Reply = domain.CodeInvalid, randomBytes(48)
	retry.CreatedAt = old.ExpiresAt
	retry.ExpiresAt = old.ExpiresAt.Add(24 * time.Hour)
	saveOutcome(t, outcomes, retry)
	checkOutcome(t, loadOutcome(t, outcomes, old.Key, retry.CreatedAt), retry)
}

func testDeleteExpiredOutcomes(t *testing.T, outcomes domain.OutcomeRepository) {
	ctx := context.Background()
	now := baseTime.Add(time.Hour)
	var expired, live []domain.Outcome
	for _, expires := range []time.Time{now.Add(-time.Hour), now.Add(-time.Microsecond), now} {
		o := NewOutcome("web")
		o.ExpiresAt = expires
		expired = append(expired, o)
	}
	for _, expires := range []time.Time{now.Add(time.Microsecond), now.Add(time.Hour)} {
		o := NewOutcome("web")
		o.ExpiresAt = expires
		live = append(live, o)
	}
	for _, o := range append(append([]domain.Outcome(nil), expired...), live...) {
		saveOutcome(t, outcomes, o)
	}

	for i, want := range []int{2, 1, 0} {
		n, err := outcomes.DeleteExpiredOutcomes(ctx, now, 2)
		if err != nil {
			t.Fatalf("DeleteExpiredOutcomes #%d: %v", i+1, err)
		}
		if n != want {
			t.Errorf("DeleteExpiredOutcomes #%d deleted %d, want %d", i+1, n, want)
		}
	}
	for _, o := range live {
		checkOutcome(t, loadOutcome(t, outcomes, o.Key, now), o)
	}
	// Deleted, not merely expired: the outcome is gone at a time before it
	// expired, and its key may be saved again by a request created then.
	for _, o := range expired {
		_, err := outcomes.Outcome(ctx, o.Key, baseTime)
		checkCode(t, "Outcome of a deleted outcome", err, domain.CodeNotFound)
		saveOutcome(t, outcomes, o)
	}

	for _, limit := range []int{0, -1} {
		_, err := outcomes.DeleteExpiredOutcomes(ctx, now, limit)
		checkCode(t, "DeleteExpiredOutcomes with a limit that is not positive", err, domain.CodeInternal)
	}
}

func testInvalidRequestKey(t *testing.T, outcomes domain.OutcomeRepository) {
	ctx := context.Background()
	tooLong := strings.Repeat("é", 256)
	tests := []struct {
		name string
		key  domain.RequestKey
	}{
		{"EmptyClientID", domain.RequestKey{ClientID: "", RequestID: "r1"}},
		{"EmptyRequestID", domain.RequestKey{ClientID: "web", RequestID: ""}},
		{"LongClientID", domain.RequestKey{ClientID: tooLong, RequestID: "r1"}},
		{"LongRequestID", domain.RequestKey{ClientID: "web", RequestID: tooLong}},
		{"NotUTF8", domain.RequestKey{ClientID: "web", RequestID: "r\xff1"}},
		{"NUL", domain.RequestKey{ClientID: "we\x00b", RequestID: "r1"}},
	}
	for _, tt := range tests {
		o := NewOutcome("web")
		o.Key = tt.key
		checkCode(t, "SaveOutcome with key "+tt.name, outcomes.SaveOutcome(ctx, o), domain.CodeInvalid)
		_, err := outcomes.Outcome(ctx, tt.key, baseTime)
		checkCode(t, "Outcome with key "+tt.name, err, domain.CodeInvalid)
	}
}

// testLongestRequestKey: the limit counts bytes, so the store takes 255
// bytes of multi-byte characters and refuses 256.
func testLongestRequestKey(t *testing.T, outcomes domain.OutcomeRepository) {
	o := NewOutcome(strings.Repeat("é", 127) + "x")
	o.Key.RequestID = strings.Repeat("ü", 127) + "y"
	saveOutcome(t, outcomes, o)
	checkOutcome(t, loadOutcome(t, outcomes, o.Key, baseTime), o)

	tooLong := NewOutcome("web")
	tooLong.Key.RequestID = strings.Repeat("ü", 128)
	checkCode(t, "SaveOutcome with a 256-byte request id", outcomes.SaveOutcome(context.Background(), tooLong), domain.CodeInvalid)
}

func testOutcomeWithoutReply(t *testing.T, outcomes domain.OutcomeRepository) {
	for _, reply := range [][]byte{nil, {}} {
		o := NewOutcome("web")
		o.Reply = reply
		checkCode(t, "SaveOutcome without a reply", outcomes.SaveOutcome(context.Background(), o), domain.CodeInternal)
		_, err := outcomes.Outcome(context.Background(), o.Key, baseTime)
		checkCode(t, "Outcome after a failed SaveOutcome", err, domain.CodeNotFound)
	}
}

func testOutcomeCanceledContext(t *testing.T, outcomes domain.OutcomeRepository) {
	o := NewOutcome("web")
	saveOutcome(t, outcomes, o)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := outcomes.Outcome(ctx, o.Key, baseTime); !errors.Is(err, context.Canceled) {
		t.Errorf("Outcome error = %v, want context.Canceled in the chain", err)
	}
	other := NewOutcome("web")
	if err := outcomes.SaveOutcome(ctx, other); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveOutcome error = %v, want context.Canceled in the chain", err)
	}
	if _, err := outcomes.DeleteExpiredOutcomes(ctx, o.ExpiresAt, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteExpiredOutcomes error = %v, want context.Canceled in the chain", err)
	}
	saveOutcome(t, outcomes, other) // the cancelled attempt stored nothing
}
