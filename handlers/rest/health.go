package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/errs"
)

// healthz is liveness: the process serves HTTP.
func (a *API) healthz(c echo.Context) error {
	return OK(c, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz asks every dependency (store, Redis when configured) with a short deadline; any failure,
// or a server that is shutting down, is 503 SERVICE_UNAVAILABLE with the per-check results.
func (a *API) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]any{}
	ok := true
	for _, rc := range a.opts.Ready {
		if err := rc.Check(ctx); err != nil {
			checks[rc.Name] = err.Error()
			ok = false
		} else {
			checks[rc.Name] = "ok"
		}
	}
	if a.opts.Draining != nil && a.opts.Draining() {
		checks["server"] = "shutting down"
		ok = false
	}
	if !ok {
		return errs.New(errs.CodeServiceUnavailable, "not ready").WithDetails(map[string]any{"checks": checks})
	}
	return OK(c, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}
