package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the human summary.
func (r *Report) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "\nSoak: %d clients, %.0fs load after %.0fs warm-up (wall %.0fs), think %d-%d ms, op timeout %d ms, seed %d\n",
		r.Clients, r.DurationS, r.WarmUpS, r.WallS, r.ThinkMs[0], r.ThinkMs[1], r.OpTimeoutMs, r.Seed)
	fmt.Fprintf(out, "load average: start %s, end %s\n\n", r.LoadAvgStart, r.LoadAvgEnd)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\ttotal\tok\texpected\tshed\tunexpected\ttimeouts\tp50 ms\tp99 ms\tmax ms\t codes\t")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t %s\t\n", o.Op, o.Total, o.OK, o.Expected,
			o.Shed, o.Unexpected, o.Timeouts, o.P50ms, o.P99ms, o.Maxms, codeList(o.Codes))
	}
	t := r.Totals
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t%d\t%d\t%d\t\t\t\t\t\n", t.Ops, t.OK, t.Expected, t.Shed, t.Unexpected, t.Timeouts)
	tw.Flush()
	fmt.Fprintf(out, "\nsocket acks p50 %.1f ms, p99 %.1f ms, max %.1f ms; REST p50 %.1f ms, p99 %.1f ms, max %.1f ms (calls the server accepted); %.0f ops/s in the load phase\n",
		t.AckP50ms, t.AckP99ms, t.AckMaxms, t.RestP50ms, t.RestP99ms, t.RestMaxms, r.OpsPerSecond)
	if t.Shed > 0 {
		fmt.Fprintf(out, "shed: %d calls refused by the server's load shedding (SERVICE_UNAVAILABLE %q within %v; nothing of them ran), refusal p50 %.1f ms, max %.1f ms\n",
			t.Shed, ShedMessage, ShedMaxLatency, t.ShedP50ms, t.ShedMaxms)
	}
	fmt.Fprintf(out, "drops: %d sessions recovered, %d fresh; peak sockets connected %.0f; sockets drained %.1fs after the last client closed\n\n",
		r.Recovered, r.NotRecovered, r.PeakSockets, r.DrainS)

	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tbaseline\tafter\tbound\t")
	b, a := r.Baseline, r.After
	fmt.Fprintf(tw, "goroutines\t%.0f\t%.0f\t+%d\t\n", b.Goroutines, a.Goroutines, r.Bounds.Goroutines)
	fmt.Fprintf(tw, "open fds\t%.0f\t%.0f\t-\t\n", b.OpenFDs, a.OpenFDs)
	fmt.Fprintf(tw, "  not the store's files\t%.0f\t%.0f\t+%d\t\n", b.OpenFDs-b.StoreFiles, a.OpenFDs-a.StoreFiles, r.Bounds.OpenFDs)
	fmt.Fprintf(tw, "  on the store's files\t%.0f\t%.0f\t<= %d\t\n", b.StoreFiles, a.StoreFiles, StoreFileBound)
	fmt.Fprintf(tw, "live heap MB\t%.1f\t%.1f\t+%.0f\t\n", b.HeapAlloc/1e6, a.HeapAlloc/1e6, r.Bounds.HeapBytes/1e6)
	fmt.Fprintf(tw, "heap in use MB\t%.1f\t%.1f\t-\t\n", b.HeapInuse/1e6, a.HeapInuse/1e6)
	fmt.Fprintf(tw, "RSS MB\t%.1f\t%.1f\t-\t\n", b.RSS/1e6, a.RSS/1e6)
	fmt.Fprintf(tw, "threads\t%.0f\t%.0f\t-\t\n", b.Threads, a.Threads)
	fmt.Fprintf(tw, "sockets\t%.0f\t%.0f\t0\t\n", b.Sockets, a.Sockets)
	tw.Flush()

	if c := r.Consistency; c != nil {
		var tol []string
		for k, v := range c.Tolerated {
			tol = append(tol, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(tol)
		fmt.Fprintf(out, "\nconsistency: %d problems; tolerated: %s; documents %v; unread counts checked for %d users\n",
			len(c.Problems), strings.Join(tol, ", "), c.Counts, c.UnreadCountsChecked)
	}
	if s := r.StoreCounts; s != nil {
		fmt.Fprintf(out, "store: lobbies %v, %d joined members of open lobbies (%d by the clients), %d messages in %d chats (%d acked, %d unanswered)\n",
			s.Lobbies, s.JoinedSeats, s.UsersInLobbies, s.Messages, s.ChatsWithTraffic, s.AckedMessages, s.UnsureMessages)
		fmt.Fprintf(out, "welcome notifications: %d of %d users (%d more waiting in the event journal, %d with two); event journal entries left: %d\n",
			s.Welcomed, s.Users, s.JournalWelcome, s.WelcomeTwice, s.JournalEntries)
	}
	if j := r.JournalRestart; j != nil {
		fmt.Fprintf(out, "restart on the same data: %d of %d deliveries journaled at SIGTERM replayed in %.1fs, %d given up, %d left\n",
			j.Replayed, j.Left, j.TookS, j.GaveUp, j.LeftAfter)
	}
	fmt.Fprintf(out, "server log: %d warnings, %d errors, %d panics (%s)\n", r.LogWarnings, r.LogErrors, r.LogPanics, r.ServerLog)
	for _, l := range r.LogLines {
		fmt.Fprintln(out, "  ", l)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintln(out, "  error:", s)
	}
	for _, s := range r.ModelMismatch {
		fmt.Fprintln(out, "  mismatch:", s)
	}
	if r.Consistency != nil {
		for _, s := range r.Consistency.Problems {
			fmt.Fprintln(out, "  consistency:", s)
		}
	}
	if r.FDDump != "" {
		fmt.Fprintln(out, "open fds by kind, baseline and after:", r.FDDump)
	}
	if r.GoroutineDump != "" {
		fmt.Fprintln(out, "goroutine profile after the run:", r.GoroutineDump)
	}
	if r.Passed() {
		fmt.Fprintln(out, "\nPASS")
		return
	}
	fmt.Fprintln(out, "\nFAIL:")
	for _, f := range r.Failures {
		fmt.Fprintln(out, "  -", f)
	}
}
