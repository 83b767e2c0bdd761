package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// LogTo sends the lines the Redis client library prints of its own accord
// (a pool that cannot dial, a connection it drops) to logger at warning
// level, as structured records, instead of to standard error as plain
// text. The library's logger is global: this applies to every client in
// the process. The library writes no command arguments in these lines.
func LogTo(logger *slog.Logger) {
	goredis.SetLogger(slogPrinter{logger})
}

// slogPrinter adapts a slog.Logger to the library's Printf logger.
type slogPrinter struct{ logger *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.logger.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis client")
}
