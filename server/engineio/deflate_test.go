package engineio

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

func TestPerMessageDeflate(t *testing.T) {
	ts := newTestServer(t, Options{PerMessageDeflate: &DeflateOptions{Threshold: 64}, MaxPayload: 10_000}, true)
	d := ws.Dialer{Extensions: []httphead.Option{wsflate.DefaultParameters.Option()}}
	c := dialWSWith(t, d, "ws"+strings.TrimPrefix(ts.url, "http")+"?EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID

	// small message: sent uncompressed (under Threshold)
	c.sendText("4hi")
	f, err := c.read()
	if err != nil || f.Header.Rsv1() || string(f.Payload) != "4hi" {
		t.Fatalf("small echo: %v rsv1=%v %q", err, f.Header.Rsv1(), f.Payload)
	}

	// large compressed message both ways
	big := "4" + strings.Repeat("compress me ", 500)
	cf, err := wsflate.CompressFrame(ws.NewTextFrame([]byte(big)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(cf)); err != nil {
		t.Fatal(err)
	}
	f, err = c.read()
	if err != nil || !f.Header.Rsv1() {
		t.Fatalf("big echo not compressed: %v rsv1=%v", err, f.Header.Rsv1())
	}
	if string(f.Payload) != big {
		t.Fatalf("inflated echo differs (%d bytes)", len(f.Payload))
	}
	binMsg := bytes.Repeat([]byte{7}, 1000)
	if err := ts.rec(sid).waitMsg(t); string(err.Data) != "hi" {
		t.Fatalf("first message %q", err.Data)
	}
	if m := ts.rec(sid).waitMsg(t); string(m.Data) != big[1:] {
		t.Fatalf("inflated message differs (%d bytes)", len(m.Data))
	}
	cf, _ = wsflate.CompressFrame(ws.NewBinaryFrame(binMsg))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(cf))
	f, err = c.read()
	if err != nil || f.Header.OpCode != ws.OpBinary {
		t.Fatalf("binary echo: %v", err)
	}
	if !f.Header.Rsv1() || !bytes.Equal(f.Payload, binMsg) {
		t.Fatalf("binary echo: rsv1=%v %d bytes", f.Header.Rsv1(), len(f.Payload))
	}

	// a small compressed frame that inflates past maxPayload closes the session
	bomb, _ := wsflate.CompressFrame(ws.NewTextFrame([]byte("4" + strings.Repeat("a", 20_000))))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(bomb))
	if code := c.waitClosed(); code != ws.StatusMessageTooBig {
		t.Fatalf("close code %d", code)
	}
	if ev := ts.rec(sid).waitClose(t, 1e9); ev.reason != ReasonTransportError {
		t.Fatalf("close %+v", ev)
	}
}

func TestDeflateNotNegotiatedRejectsRsv1(t *testing.T) {
	ts := newTestServer(t, Options{}, true)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	cf, _ := wsflate.CompressFrame(ws.NewTextFrame([]byte("4hello")))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(cf))
	if code := c.waitClosed(); code != ws.StatusProtocolError {
		t.Fatalf("close code %d", code)
	}
	if ev := ts.rec(sid).waitClose(t, 1e9); ev.reason != ReasonTransportError {
		t.Fatalf("close %+v", ev)
	}
}
