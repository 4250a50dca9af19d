package parser

import (
	"encoding/json"
	"testing"
)

type chatMessage struct {
	Room string `json:"room"`
	From string `json:"from"`
	Text string `json:"text"`
	At   int64  `json:"at"`
}

func BenchmarkEncode(b *testing.B) {
	p := &Packet{Type: Event, Nsp: "/chat", ID: 42, Data: json.RawMessage(`["message",{"room":"lobby","from":"u1","text":"hello there","at":1700000000}]`)}
	buf := make([]byte, 0, 256)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendEncode(buf[:0], p)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Encode(p)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	text := []byte(`2/chat,42["message",{"room":"lobby","from":"u1","text":"hello there","at":1700000000}]`)
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		var d Decoder
		for b.Loop() {
			if _, err := d.Add(text, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	bin := []byte(`51-/chat,42["file",{"name":"a.png","data":{"_placeholder":true,"num":0}}]`)
	att := make([]byte, 4096)
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		var d Decoder
		for b.Loop() {
			if _, err := d.Add(bin, false); err != nil {
				b.Fatal(err)
			}
			if _, err := d.Add(att, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMarshalArgs(b *testing.B) {
	msg := chatMessage{Room: "lobby", From: "u1", Text: "hello there", At: 1700000000}
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := MarshalArgs("message", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		data := make([]byte, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := MarshalArgs("file", map[string]any{"name": "a.png", "data": data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeArgs(b *testing.B) {
	raw := json.RawMessage(`{"room":"lobby","from":"u1","text":"hello there","at":1700000000}`)
	b.ReportAllocs()
	for b.Loop() {
		var m chatMessage
		if err := Decode(raw, nil, &m); err != nil {
			b.Fatal(err)
		}
	}
}
