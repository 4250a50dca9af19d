// Package parser is the Socket.IO v5 packet codec.
//
// A packet travels as one Engine.IO text message
//
//	<type>[<attachments>-][<nsp>,][<id>][<json payload>]
//
// followed, for BINARY_EVENT (5) and BINARY_ACK (6), by <attachments> Engine.IO
// binary messages. Inside the JSON payload each binary value is replaced by a
// placeholder {"_placeholder":true,"num":N} where N indexes the attachments.
//
// The package has three parts:
//
//   - Encode and Decoder turn packets into wire frames and back, and enforce
//     the validity rules of Node's socket.io-parser (the reference
//     implementation): unknown types, malformed attachment counts, payloads
//     of the wrong shape, reserved event names and placeholders that point at
//     no attachment are all errors. A server closes the connection on any
//     decode error.
//   - MarshalArgs builds an event or ack payload from Go values, moving every
//     []byte it finds (at any depth, also inside structs and maps) into the
//     attachments.
//   - Decode and ReconstructArgs read a payload back into Go values, mapping
//     placeholders onto []byte targets (and onto []byte inside any).
//
// Decoded packets are normalised as Node does: a BINARY_EVENT comes out as
// Type Event with its Attachments set, a BINARY_ACK as Type Ack. Encode does
// the reverse: an Event or Ack with attachments is written as BINARY_EVENT or
// BINARY_ACK. Consumers therefore only need to handle Event and Ack.
package parser
