package engineio

import (
	"bytes"
	"compress/flate"
	"io"
	"sync"
)

// deflater compresses and inflates permessage-deflate messages negotiated
// without context takeover (RFC 7692): every message is an independent
// deflate stream, so compressors are pooled instead of kept per connection.
type deflater struct {
	threshold int
	level     int
	max       int
	writers   sync.Pool // *flate.Writer
	readers   sync.Pool // io.ReadCloser implementing flate.Resetter
}

// deflateTail is the empty stored block every compressed message omits.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

func newDeflater(o *DeflateOptions, max int) *deflater {
	return &deflater{threshold: o.Threshold, level: o.Level, max: max}
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compress appends the compressed form of prefix+data to dst.
func (d *deflater) compress(dst, prefix, data []byte) ([]byte, error) {
	aw := &appendWriter{b: dst}
	fw, _ := d.writers.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriter(aw, d.level); err != nil {
			return dst, err
		}
	} else {
		fw.Reset(aw)
	}
	defer func() {
		fw.Reset(io.Discard)
		d.writers.Put(fw)
	}()
	if _, err := fw.Write(prefix); err != nil {
		return dst, err
	}
	if _, err := fw.Write(data); err != nil {
		return dst, err
	}
	if err := fw.Flush(); err != nil {
		return dst, err
	}
	return bytes.TrimSuffix(aw.b, deflateTail), nil
}

// decompress appends the inflated message to dst, refusing more than max bytes.
func (d *deflater) decompress(dst, msg []byte) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(msg), bytes.NewReader(deflateTail))
	fr, _ := d.readers.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
		return dst, err
	}
	defer d.readers.Put(fr)
	out, err := readAtMost(dst, fr, d.max+1)
	if err == io.ErrUnexpectedEOF {
		err = nil // the stream ends at the sync flush, without a final block
	}
	if err != nil {
		return out, err
	}
	if len(out) > d.max {
		return out, ErrPayloadTooBig
	}
	return out, nil
}
