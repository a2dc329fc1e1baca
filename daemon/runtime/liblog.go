package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"

	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// withLibraryLogger sends what containerd's client library logs on ctx
// (through logrus) to c's slog logger instead of the process's stderr:
// its info messages at debug level (they are chatter such as a registry's
// 401 before authenticating), warnings and errors as such. secret, when
// not empty, is redacted from every message and field.
func (c *Containerd) withLibraryLogger(ctx context.Context, secret string) context.Context {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.WarnLevel)
	if c.log.Enabled(ctx, slog.LevelDebug) {
		l.SetLevel(logrus.DebugLevel)
	}
	l.AddHook(&slogHook{log: c.log, secret: secret})
	return clog.WithLogger(ctx, logrus.NewEntry(l))
}

// slogHook forwards logrus entries to slog.
type slogHook struct {
	log    *slog.Logger
	secret string
}

func (h *slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys)+1)
	attrs = append(attrs, slog.String("source", "containerd-client"))
	for _, k := range keys {
		attrs = append(attrs, slog.String(k, redact(fmt.Sprint(e.Data[k]), h.secret)))
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.log.LogAttrs(ctx, level, redact(e.Message, h.secret), attrs...)
	return nil
}
