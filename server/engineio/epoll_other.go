//go:build !linux

package engineio

// Without epoll every websocket has its reader goroutine (ReadModeGoroutine).

const epollSupported = false

type epollState struct{}

func (s *Server) startEpollReader(c *Conn, wc *wsConn, probing bool) bool { return false }

func (wc *wsConn) closeConn() { wc.conn.Close() }

func (s *Server) newEpollState(wc *wsConn) *epollState { return nil }
