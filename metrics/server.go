package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Path is where Open serves the metrics.
const Path = "/metrics"

// Open serves the metrics at Path on ln in the background, over HTTP with
// timeouts that no slow scraper can hold open for long; any other path is
// 404. It returns an error if the metrics are served already. Close stops
// serving and closes ln.
func (m *Metrics) Open(ln net.Listener) error {
	if m.http != nil {
		return errors.New("metrics: already served")
	}
	mux := http.NewServeMux()
	mux.Handle(Path, m.Handler())
	m.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	m.served = make(chan struct{})
	go func() {
		defer close(m.served)
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("metrics server stopped", "err", err)
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
