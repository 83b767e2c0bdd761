package main

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/authworker/authworker/passwords"
)

// TestHashPoolFitsTheWorkers: what the settings leave to default is sized
// so that requests that hash, running or waiting, leave a handler free for
// cheap requests; explicit settings are taken as given.
func TestHashPoolFitsTheWorkers(t *testing.T) {
	cpus := passwords.DefaultSlots()
	tests := []struct {
		name      string
		env       []string
		wantSlots int
		wantQueue int
	}{
		{"Defaults", []string{"AUTH_WORKERS=64"}, cpus, 2 * cpus},
		{"QueueFitted", []string{"AUTH_WORKERS=4", "AUTH_HASH_SLOTS=1"}, 1, 2},
		{"SlotsFitted", []string{"AUTH_WORKERS=2"}, 1, passwords.NoQueue},
		{"OneWorker", []string{"AUTH_WORKERS=1"}, 1, passwords.NoQueue},
		{"Explicit", []string{"AUTH_WORKERS=64", "AUTH_HASH_SLOTS=3", "AUTH_HASH_QUEUE=10"}, 3, 10},
		{"NoQueue", []string{"AUTH_WORKERS=64", "AUTH_HASH_SLOTS=3", "AUTH_HASH_QUEUE=0"}, 3, passwords.NoQueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, tt.env...)
			cfg, err := LoadConfig(env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.HashPool; got.Slots != tt.wantSlots || got.Queue != tt.wantQueue {
				t.Errorf("slots %d, queue %d; want %d, %d", got.Slots, got.Queue, tt.wantSlots, tt.wantQueue)
			}
			if cfg.HashPool.MaxWait != passwords.DefaultMaxWait {
				t.Errorf("max wait %v, want the default %v", cfg.HashPool.MaxWait, passwords.DefaultMaxWait)
			}
		})
	}
	cfg, err := LoadConfig([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "AUTH_HASH_MAX_WAIT=500ms"})
	if err != nil || cfg.HashPool.MaxWait != 500*time.Millisecond {
		t.Errorf("AUTH_HASH_MAX_WAIT=500ms gives %v, %v", cfg.HashPool.MaxWait, err)
	}
}
