package clienttest

import "time"

// enginePacket is one Engine.IO packet. A text packet carries its type
// digit ("4..." message, "2" ping, ...); a binary packet is a binary
// message (type 4 implied, as in Engine.IO v4).
type enginePacket struct {
	binary bool
	data   []byte
}

func textPacket(s string) enginePacket { return enginePacket{data: []byte(s)} }

// transport moves Engine.IO packets. read is only called by one goroutine
// at a time; write is safe for concurrent use and writes its packets
// together, in order.
type transport interface {
	// read returns the next packet; a zero deadline waits forever.
	read(deadline time.Time) (enginePacket, error)
	write(pkts ...enginePacket) error
	// interrupt makes a blocked read return an error (used to honour a ctx).
	interrupt()
	// close ends the transport; graceful says goodbye first (WebSocket
	// close frame, or the Engine.IO close packet over polling).
	close(graceful bool)
	name() string
}

// errTimeout is what a transport's read returns when its deadline passed.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string { return "timeout: " + e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }
