package metrics

// App is the set of application metrics. The REST layer feeds HTTP*, the socket layer feeds
// Sockets* / Events* / HandlerSeconds, and both count error codes in Errors.
type App struct {
	Registry *Registry

	// SocketsConnected: currently connected Socket.IO sockets (Inc on connect, Dec on disconnect).
	SocketsConnected *GaugeVec
	// EventsIn / EventsOut: Socket.IO events by name. Use the event names of EVENTS.md; map anything
	// a client invents to "unknown" before counting. The app counts EventsIn for every handled client
	// event and EventsOut for every event it sends: by the services to rooms (realtime.Emitter), by the
	// socket handlers to their socket or its rooms, and the `error` answers. One broadcast counts once,
	// whatever the number of receivers.
	EventsIn  *CounterVec
	EventsOut *CounterVec
	// HandlerSeconds: time a socket event handler took, by event name.
	HandlerSeconds *HistogramVec
	// Errors: coded errors answered to clients, by code and origin ("rest" or "socket").
	Errors *CounterVec
	// HTTPRequests / HTTPSeconds: REST requests by method, route pattern and status.
	HTTPRequests *CounterVec
	HTTPSeconds  *HistogramVec
}

// NewApp registers the application metrics, and the Go runtime and process gauges (RegisterRuntime),
// in a fresh registry.
func NewApp() *App {
	r := NewRegistry()
	RegisterRuntime(r)
	return &App{
		Registry:         r,
		SocketsConnected: r.Gauge("maoga_sockets_connected", "Socket.IO sockets currently connected."),
		EventsIn:         r.Counter("maoga_socket_events_in_total", "Socket.IO events received, by event name.", "event"),
		EventsOut:        r.Counter("maoga_socket_events_out_total", "Socket.IO events sent, by event name.", "event"),
		HandlerSeconds:   r.Histogram("maoga_socket_handler_duration_seconds", "Socket.IO event handler latency.", nil, "event"),
		Errors:           r.Counter("maoga_errors_total", "Coded errors answered to clients, by code and origin.", "code", "origin"),
		HTTPRequests:     r.Counter("maoga_http_requests_total", "REST requests by method, route and status.", "method", "route", "status"),
		HTTPSeconds:      r.Histogram("maoga_http_request_duration_seconds", "REST request latency by method and route.", nil, "method", "route"),
	}
}

// AdmissionStats is what the load-shedding limiter reports (*admission.Limiter).
type AdmissionStats interface {
	Limit() int
	InFlight() int
	Queued() int
	Refused() uint64
}

// RegisterAdmission exports the load-shedding limiter's numbers, read at each scrape:
// maoga_admission_limit, maoga_admission_in_flight, maoga_admission_queued and
// maoga_admission_refused_total. Call it once, only when load shedding is on.
func (a *App) RegisterAdmission(s AdmissionStats) {
	r := a.Registry
	r.GaugeFunc("maoga_admission_limit", "Current adaptive limit of requests in flight (load shedding).",
		func() float64 { return float64(s.Limit()) })
	r.GaugeFunc("maoga_admission_in_flight", "Admitted requests (REST calls, socket events) not yet finished.",
		func() float64 { return float64(s.InFlight()) })
	r.GaugeFunc("maoga_admission_queued", "Requests waiting for a free slot of the in-flight limit.",
		func() float64 { return float64(s.Queued()) })
	r.CounterFunc("maoga_admission_refused_total", "Requests refused with SERVICE_UNAVAILABLE because the in-flight limit was reached.",
		func() float64 { return float64(s.Refused()) })
}
