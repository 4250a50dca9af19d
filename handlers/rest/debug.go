package rest

import (
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"

	"github.com/labstack/echo/v4"
)

// DebugGC is the answer of POST /debug/gc: the runtime numbers right after a full collection.
type DebugGC struct {
	Goroutines  int    `json:"goroutines"`
	HeapAlloc   uint64 `json:"heapAlloc"`   // bytes of live heap objects after the collection
	HeapInuse   uint64 `json:"heapInuse"`   // bytes in in-use spans
	HeapObjects uint64 `json:"heapObjects"` // live objects
	Sys         uint64 `json:"sys"`         // bytes obtained from the OS
	NumGC       uint32 `json:"numGC"`
}

// RegisterDebug adds the debugging routes (DEBUG_ENDPOINTS): GET /debug/pprof/... (net/http/pprof:
// goroutine, heap, profile, trace, ...) and POST /debug/gc, which runs a full collection, returns
// freed memory to the OS (debug.FreeOSMemory) and answers DebugGC. They answer only a peer on a
// loopback address, whatever forwarded headers say (TRUSTED_PROXIES is not consulted): 404 otherwise.
func RegisterDebug(e *echo.Echo) {
	g := e.Group("/debug", loopbackOnly)
	g.POST("/gc", func(c echo.Context) error {
		debug.FreeOSMemory() // runs a full GC first
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return c.JSON(http.StatusOK, DebugGC{Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc,
			HeapInuse: ms.HeapInuse, HeapObjects: ms.HeapObjects, Sys: ms.Sys, NumGC: ms.NumGC})
	})
	g.GET("/pprof/", echo.WrapHandler(http.HandlerFunc(pprof.Index)))
	g.GET("/pprof/cmdline", echo.WrapHandler(http.HandlerFunc(pprof.Cmdline)))
	g.GET("/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
	g.GET("/pprof/symbol", echo.WrapHandler(http.HandlerFunc(pprof.Symbol)))
	g.GET("/pprof/trace", echo.WrapHandler(http.HandlerFunc(pprof.Trace)))
	g.GET("/pprof/:name", func(c echo.Context) error {
		pprof.Handler(c.Param("name")).ServeHTTP(c.Response(), c.Request())
		return nil
	})
}

func loopbackOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return echo.ErrNotFound // the API's error handler answers the NOT_FOUND envelope
		}
		return next(c)
	}
}
