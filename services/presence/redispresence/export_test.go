package redispresence

// Crash stops the node's loops without removing it from Redis: what kill -9 leaves behind.
func (s *Service) Crash() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
}
