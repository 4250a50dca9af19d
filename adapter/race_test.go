//go:build race

package adapter

// raceEnabled: under the race detector sync.Pool drops a quarter of its Puts
// on purpose, so allocation counts that rely on pooled buffers are not stable.
const raceEnabled = true
