package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

var (
	t0     = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	policy = domain.KeyPolicy{Period: 7 * 24 * time.Hour, PrePublish: time.Hour, Retention: 20 * time.Minute}
)

// key is a key of alg scheduled by policy from signFrom.
func key(id, alg string, signFrom time.Time) domain.SigningKey {
	k := domain.SigningKey{ID: id, Algorithm: alg}
	policy.Schedule(&k, signFrom)
	return k
}

func TestKeyState(t *testing.T) {
	k := key("a", "EdDSA", t0)
	tests := []struct {
		at   time.Time
		want domain.KeyState
	}{
		{t0.Add(-time.Minute), domain.KeyNext},
		{t0, domain.KeyCurrent},
		{k.SignUntil.Add(-time.Nanosecond), domain.KeyCurrent},
		{k.SignUntil, domain.KeyRetired},
		{k.PublishUntil.Add(-time.Nanosecond), domain.KeyRetired},
		{k.PublishUntil, domain.KeyRemoved},
	}
	for _, tt := range tests {
		if got := k.State(tt.at); got != tt.want {
			t.Errorf("State(%v) = %s, want %s", tt.at, got, tt.want)
		}
	}
}

func TestKeyPolicyPlan(t *testing.T) {
	current := key("cur", "EdDSA", t0)
	end := current.SignUntil
	legacy := domain.SigningKey{ID: "old", Algorithm: "EdDSA", SignFrom: t0}
	legacyEnded := legacy
	legacyEnded.SignUntil, legacyEnded.PublishUntil = t0.Add(policy.Period), t0.Add(policy.Period+policy.Retention)
	tests := []struct {
		name string
		keys []domain.SigningKey
		alg  string
		now  time.Time
		want domain.Rotation
	}{
		{"FirstKeySignsAtOnce", nil, "EdDSA", t0,
			domain.Rotation{Create: true, SignFrom: t0}},
		{"NewAlgorithmIsPublishedFirst", []domain.SigningKey{current}, "ES256", t0.Add(time.Hour),
			domain.Rotation{Create: true, SignFrom: t0.Add(2 * time.Hour)}},
		{"NothingDueYet", []domain.SigningKey{current}, "EdDSA", end.Add(-2*policy.PrePublish - time.Second),
			domain.Rotation{}},
		{"SuccessorSignsFromTheEnd", []domain.SigningKey{current}, "EdDSA", end.Add(-2 * policy.PrePublish),
			domain.Rotation{Create: true, SignFrom: end}},
		{"NextKeyScheduled", []domain.SigningKey{current, key("next", "EdDSA", end)}, "EdDSA", end.Add(-time.Hour),
			domain.Rotation{}},
		{"LateWorkersExtendTheCurrentKey", []domain.SigningKey{current}, "EdDSA", end.Add(-time.Minute),
			domain.Rotation{Create: true, SignFrom: end.Add(-time.Minute + policy.PrePublish), Changed: []domain.SigningKey{
				withEnd(current, end.Add(-time.Minute+policy.PrePublish))}}},
		{"RetiredKeySignsAgainUntilItsSuccessor", []domain.SigningKey{current}, "EdDSA", end.Add(10 * time.Minute),
			domain.Rotation{Create: true, SignFrom: end.Add(10*time.Minute + policy.PrePublish), Changed: []domain.SigningKey{
				withEnd(current, end.Add(10*time.Minute+policy.PrePublish))}}},
		{"RemovedKeyIsGone", []domain.SigningKey{current}, "EdDSA", current.PublishUntil,
			domain.Rotation{Create: true, SignFrom: current.PublishUntil}},
		{"LegacyKeyGetsAnEnd", []domain.SigningKey{legacy}, "EdDSA", t0.Add(time.Hour),
			domain.Rotation{Changed: []domain.SigningKey{legacyEnded}}},
		{"OtherAlgorithmsDoNotCount", []domain.SigningKey{current, key("es", "ES256", t0)}, "EdDSA", t0.Add(time.Hour),
			domain.Rotation{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policy.Plan(tt.keys, tt.alg, tt.now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan = %+v\nwant   %+v", got, tt.want)
			}
		})
	}
}

func withEnd(k domain.SigningKey, end time.Time) domain.SigningKey {
	k.SignUntil, k.PublishUntil = end, end.Add(policy.Retention)
	return k
}
