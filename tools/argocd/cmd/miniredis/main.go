// Command miniredis serves github.com/alicebob/miniredis/v2 (an in-memory
// Redis) on a loopback port for Argo CD in Baton's tests.
//
// miniredis never expires keys on its own: its clock only moves when told to.
// Argo CD caches answers (git ls-remote, manifests, app state) with TTLs, so
// this wrapper advances the clock by the wall time that passed, every tick.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (port 0 picks a free one)")
	tick := flag.Duration("tick", 500*time.Millisecond, "how often to advance the TTL clock")
	flag.Parse()

	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "miniredis: listen on %s: %v\n", *addr, err)
		os.Exit(1)
	}
	// The harness reads this line to learn the port.
	fmt.Printf("listening on %s\n", m.Addr())

	go func() {
		last := time.Now()
		for now := range time.Tick(*tick) {
			m.FastForward(now.Sub(last))
			last = now
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	m.Close()
}
