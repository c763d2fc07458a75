// gopay: a small two-phase-commit payment service over RabbitMQ.
//
//	gopay coordinator   HTTP API POST /payments, GET /state; durable decision log
//	gopay shard         an account shard: funds held at prepare, debit/credit at commit
//	gopay ledger        a journal that takes part in every payment
//
// Configuration comes from the environment (see config below). Every service
// keeps its state in an fsynced log under GOPAY_DATA and recovers from it on
// restart. GOPAY_MUTANT switches on a seeded bug (see participant.go).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type config struct {
	name, role, amqpURL, ns, data, mutant string
	port                                  int
	accounts                              map[string]int64
	shards                                []string
	voteTimeout                           time.Duration
}

func env(key string) string {
	v := os.Getenv(key)
	if v == "" {
		log.Fatalf("%s is not set", key)
	}
	return v
}

func loadConfig(role string) config {
	c := config{role: role, name: env("GOPAY_NAME"), amqpURL: env("GOPAY_AMQP"), ns: env("GOPAY_NAMESPACE"),
		data: env("GOPAY_DATA"), mutant: os.Getenv("GOPAY_MUTANT"), voteTimeout: 3 * time.Second}
	port, err := strconv.Atoi(env("GOPAY_PORT"))
	if err != nil {
		log.Fatalf("GOPAY_PORT: %v", err)
	}
	c.port = port
	if err := json.Unmarshal([]byte(env("GOPAY_ACCOUNTS")), &c.accounts); err != nil {
		log.Fatalf("GOPAY_ACCOUNTS must be a JSON object of balances: %v", err)
	}
	c.shards = strings.Split(env("GOPAY_SHARDS"), ",")
	if v := os.Getenv("GOPAY_VOTE_TIMEOUT_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			log.Fatalf("GOPAY_VOTE_TIMEOUT_MS: %v", err)
		}
		c.voteTimeout = time.Duration(ms) * time.Millisecond
	}
	if err := os.MkdirAll(c.data, 0o755); err != nil {
		log.Fatalf("GOPAY_DATA: %v", err)
	}
	return c
}

// owner is the shard that holds an account: accounts in sorted order, dealt round-robin.
func (c config) owner(account string) string {
	ids := make([]string, 0, len(c.accounts))
	for id := range c.accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		if id == account {
			return c.shards[i%len(c.shards)]
		}
	}
	return ""
}

func (c config) storePath() string { return filepath.Join(c.data, c.name+".log") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func serve(c config, mux *http.ServeMux, bus *Bus) {
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if !bus.ready.Load() {
			writeJSON(w, 503, map[string]string{"status": "connecting"})
			return
		}
		writeJSON(w, 200, map[string]string{"status": "ok"})
	})
	failpointHandlers(c.role, mux)
	go bus.Run()
	addr := fmt.Sprintf("127.0.0.1:%d", c.port)
	log.Printf("%s %s listening on %s (mutant %q)", c.role, c.name, addr, c.mutant)
	log.Fatal(http.ListenAndServe(addr, mux))
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gopay coordinator|shard|ledger")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "coordinator":
		runCoordinator(loadConfig("coordinator"))
	case "shard", "ledger":
		runParticipant(loadConfig(os.Args[1]))
	default:
		fmt.Fprintf(os.Stderr, "unknown role %q; use coordinator, shard or ledger\n", os.Args[1])
		os.Exit(2)
	}
}
