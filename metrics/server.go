package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Path is where Open serves the metrics.
const Path = "/metrics"

// Open serves the metrics at Path on Listener in the background, over HTTP
// with timeouts that no slow scraper can hold open for long; any other path
// is 404. It returns an error if Listener is unset or the metrics are served
// already. Close stops serving and closes Listener.
func (m *Metrics) Open() error {
	switch {
	case m.Listener == nil:
		return errors.New("metrics: a Listener is required")
	case m.http != nil:
		return errors.New("metrics: already served")
	}
	ln, logger := m.Listener, m.logger()
	mux := http.NewServeMux()
	mux.Handle(Path, m.Handler())
	m.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	m.served = make(chan struct{})
	go func() {
		defer close(m.served)
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// Close stops serving: scrapes in progress finish until ctx ends, when their
// connections are closed and ctx's error is returned. Close before Open does
// nothing.
func (m *Metrics) Close(ctx context.Context) error {
	if m.http == nil {
		return nil
	}
	err := m.http.Shutdown(ctx)
	if err != nil {
		m.http.Close()
	}
	<-m.served
	return err
}
