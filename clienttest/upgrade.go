package clienttest

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// upgrade moves a connected polling session to a WebSocket: probe, let the
// server end the pending poll (it answers it with a noop), then send the
// upgrade packet. Packets the last polls brought are kept for the reader.
func (c *Client) upgrade(ctx context.Context, pollURL *url.URL) error {
	pt := c.tr.(*pollingTransport)
	u := *pollURL
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	q := u.Query()
	q.Set("transport", "websocket")
	q.Set("sid", c.engine)
	u.RawQuery = q.Encode()
	wt, err := dialWebSocket(ctx, u.String(), c.opts)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		wt.close(false)
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("clienttest: upgrade: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { wt.interrupt(); pt.interrupt() })
	defer stop()

	if err := wt.write(textPacket("2probe")); err != nil {
		return fail(err)
	}
	pkt, err := wt.read(time.Time{})
	if err != nil {
		return fail(err)
	}
	if pkt.binary || string(pkt.data) != "3probe" {
		return fail(fmt.Errorf("probe answered with %q", pkt.data))
	}
	// Poll until the server sends the noop that frees the polling transport.
	for noop := false; !noop; {
		pkt, err := pt.read(time.Time{})
		if err != nil {
			return fail(err)
		}
		if !pkt.binary && string(pkt.data) == "6" {
			noop = true
			continue
		}
		c.early = append(c.early, pkt)
	}
	c.early = append(c.early, pt.pending...) // what came with the noop
	pt.pending = nil
	if err := wt.write(textPacket("5")); err != nil {
		return fail(err)
	}
	pt.close(false) // no close packet: the session lives on over the WebSocket
	c.tr = wt
	return nil
}
