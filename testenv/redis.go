package testenv

import (
	"context"
	"fmt"
	"testing"

	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

var redisService = &service{
	envVar: "REDIS_URL",
	start: func(ctx context.Context) (string, error) {
		c, err := tcredis.Run(ctx, "redis:7-alpine")
		if err != nil {
			return "", fmt.Errorf("start redis container: %w", err)
		}
		return c.ConnectionString(ctx)
	},
}

// RedisURL returns the URL of the shared Redis server. Tests keep apart by
// giving adapters a Unique key prefix.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return redisService.resolve(tb)
}
