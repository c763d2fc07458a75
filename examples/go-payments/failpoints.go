package main

// Failpoints: named steps of the protocol where a test can make this process
// crash (exit at once, as kill -9 would) or stall. Armed over HTTP from the
// loopback interface only; each fires once, at its next hit.
//
//	POST   /failpoints {"name": "after-prepare", "action": "crash" | "delay", "ms": 500}
//	DELETE /failpoints   disarms everything

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"sync"
	"time"
)

var pointsOf = map[string][]string{
	"coordinator": {"after-decide"},                  // decision logged, not yet sent
	"shard":       {"after-prepare", "after-commit"}, // persisted, not yet voted / acked
	"ledger":      {"after-prepare", "after-commit"},
}

type armed struct {
	action string
	ms     int
}

var failpoints = struct {
	sync.Mutex
	armed map[string]armed
}{armed: map[string]armed{}}

// hit fires the failpoint `name` if it is armed.
func hit(name string) {
	failpoints.Lock()
	a, ok := failpoints.armed[name]
	delete(failpoints.armed, name)
	failpoints.Unlock()
	if !ok {
		return
	}
	log.Printf("failpoint %s: %s", name, a.action)
	if a.action == "crash" {
		os.Exit(99)
	}
	time.Sleep(time.Duration(a.ms) * time.Millisecond)
}

func failpointHandlers(role string, mux *http.ServeMux) {
	mux.HandleFunc("POST /failpoints", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name   string `json:"name"`
			Action string `json:"action"`
			Ms     int    `json:"ms"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]string{"error": "body must be JSON {name, action, ms}"})
			return
		}
		known := false
		for _, p := range pointsOf[role] {
			known = known || p == req.Name
		}
		if !known || (req.Action != "crash" && req.Action != "delay") {
			writeJSON(w, 400, map[string]any{"error": "unknown failpoint or action", "failpoints": pointsOf[role],
				"actions": []string{"crash", "delay"}})
			return
		}
		failpoints.Lock()
		failpoints.armed[req.Name] = armed{req.Action, req.Ms}
		failpoints.Unlock()
		writeJSON(w, 200, map[string]string{"armed": req.Name})
	})
	mux.HandleFunc("DELETE /failpoints", func(w http.ResponseWriter, r *http.Request) {
		failpoints.Lock()
		failpoints.armed = map[string]armed{}
		failpoints.Unlock()
		writeJSON(w, 200, map[string]string{"armed": ""})
	})
}
