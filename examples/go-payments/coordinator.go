package main

// The coordinator: logs "begin" before asking for votes, logs the decision
// (fsynced) before telling anyone, resends the decision until every
// participant acks, then logs "done". Presumed abort: a payment it never began
// is aborted when a participant asks. On restart it aborts every payment that
// was begun but not decided, and re-drives every decided one not yet done.

import (
	"encoding/json"
	"log"
	"net/http"
	"sort"
	"sync"
	"time"
)

type payment struct {
	ID, From, To string
	Amount       int64
	Participants []string
	Decision     string // "", "commit" or "abort"
	Reason       string
	Done         bool
	votes        map[string]bool
	acked        map[string]bool
	decided      chan struct{}
	started      time.Time
}

type coordinator struct {
	c        config
	mu       sync.Mutex
	payments map[string]*payment
	store    *Store
	bus      *Bus
}

func newPayment(id, from, to string, amount int64, parts []string) *payment {
	return &payment{ID: id, From: from, To: to, Amount: amount, Participants: parts,
		votes: map[string]bool{}, acked: map[string]bool{}, decided: make(chan struct{}), started: time.Now()}
}

func (co *coordinator) replay(rec map[string]any) {
	id, _ := rec["id"].(string)
	switch rec["op"] {
	case "begin":
		var parts []string
		for _, p := range rec["participants"].([]any) {
			parts = append(parts, p.(string))
		}
		co.payments[id] = newPayment(id, rec["from"].(string), rec["to"].(string), num(rec["amount"]), parts)
	case "decide":
		if p := co.payments[id]; p != nil {
			p.Decision, p.Reason = rec["decision"].(string), rec["reason"].(string)
			close(p.decided)
		}
	case "done":
		if p := co.payments[id]; p != nil {
			p.Done = true
		}
	}
}

func runCoordinator(c config) {
	co := &coordinator{c: c, payments: map[string]*payment{}}
	store, err := OpenStore(c.storePath(), co.replay)
	if err != nil {
		log.Fatalf("decision log: %v", err)
	}
	co.store = store
	co.bus = NewBus(c.amqpURL, c.ns, "coordinator", co.onMessage)
	co.mu.Lock()
	for _, p := range co.payments {
		if p.Decision == "" {
			co.decideLocked(p, "abort", "coordinator restarted before deciding")
		}
	}
	log.Printf("recovered %d payments", len(co.payments))
	co.mu.Unlock()
	go co.driver()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments", co.handlePayment)
	mux.HandleFunc("GET /state", co.handleState)
	serve(c, mux, co.bus)
}

func (co *coordinator) participantsOf(from, to string) []string {
	set := map[string]bool{co.c.owner(from): true, co.c.owner(to): true, "ledger": true}
	parts := make([]string, 0, len(set))
	for p := range set {
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return parts
}

func (co *coordinator) handlePayment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     string `json:"id"`
		From   string `json:"from"`
		To     string `json:"to"`
		Amount int64  `json:"amount"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, map[string]string{"error": "body must be JSON {id, from, to, amount}"})
		return
	}
	if req.ID == "" || req.Amount <= 0 || req.From == req.To || co.c.owner(req.From) == "" || co.c.owner(req.To) == "" {
		writeJSON(w, 400, map[string]string{"error": "need an id, two different known accounts and a positive amount"})
		return
	}
	co.mu.Lock()
	p := co.payments[req.ID]
	if p == nil {
		p = newPayment(req.ID, req.From, req.To, req.Amount, co.participantsOf(req.From, req.To))
		co.store.Append(map[string]any{"op": "begin", "id": p.ID, "from": p.From, "to": p.To,
			"amount": p.Amount, "participants": p.Participants})
		co.payments[p.ID] = p
		go co.prepare(p)
	} else if p.From != req.From || p.To != req.To || p.Amount != req.Amount {
		co.mu.Unlock()
		writeJSON(w, 400, map[string]string{"error": "payment id reused with other details"})
		return
	}
	co.mu.Unlock()
	select {
	case <-p.decided:
	case <-time.After(co.c.voteTimeout + 5*time.Second):
		writeJSON(w, 503, map[string]string{"status": "pending"})
		return
	}
	co.mu.Lock()
	decision, reason := p.Decision, p.Reason
	co.mu.Unlock()
	if decision == "commit" {
		writeJSON(w, 200, map[string]string{"status": "committed"})
	} else {
		writeJSON(w, 409, map[string]string{"status": "aborted", "reason": reason})
	}
}

// prepare asks every participant to vote, resending each second, and aborts
// when the votes are not all in by the vote timeout.
func (co *coordinator) prepare(p *payment) {
	deadline := time.Now().Add(co.c.voteTimeout)
	for time.Now().Before(deadline) {
		co.mu.Lock()
		if p.Decision != "" {
			co.mu.Unlock()
			return
		}
		var missing []string
		for _, part := range p.Participants {
			if _, ok := p.votes[part]; !ok {
				missing = append(missing, part)
			}
		}
		co.mu.Unlock()
		for _, part := range missing {
			co.bus.Send(part, Msg{Type: "prepare", ID: p.ID, From: p.From, To: p.To, Amount: p.Amount})
		}
		select {
		case <-p.decided:
			return
		case <-time.After(time.Second):
		}
	}
	co.mu.Lock()
	co.decideLocked(p, "abort", "vote timeout")
	co.mu.Unlock()
}

// decideLocked makes the decision durable, then tells the participants.
func (co *coordinator) decideLocked(p *payment, decision, reason string) {
	if p.Decision != "" {
		return
	}
	co.store.Append(map[string]any{"op": "decide", "id": p.ID, "decision": decision, "reason": reason})
	p.Decision, p.Reason = decision, reason
	close(p.decided)
	hit("after-decide")
	for _, part := range p.Participants {
		co.bus.Send(part, Msg{Type: decision, ID: p.ID})
	}
}

func (co *coordinator) onMessage(m Msg) {
	co.mu.Lock()
	defer co.mu.Unlock()
	p := co.payments[m.ID]
	switch m.Type {
	case "vote":
		if p == nil || p.Decision != "" {
			return // the driver resends the decision
		}
		p.votes[m.Participant] = m.Yes
		if !m.Yes {
			co.decideLocked(p, "abort", m.Reason)
			return
		}
		for _, part := range p.Participants {
			if !p.votes[part] {
				return
			}
		}
		co.decideLocked(p, "commit", "")
	case "ack":
		if p == nil || p.Done {
			return
		}
		p.acked[m.Participant] = true
		for _, part := range p.Participants {
			if !p.acked[part] {
				return
			}
		}
		p.Done = true
		co.store.Append(map[string]any{"op": "done", "id": p.ID})
	case "query":
		if p == nil {
			co.bus.Send(m.Participant, Msg{Type: "abort", ID: m.ID}) // presumed abort
		} else if p.Decision != "" {
			co.bus.Send(m.Participant, Msg{Type: p.Decision, ID: m.ID})
		}
	}
}

// driver resends each decision to the participants that have not acked it.
func (co *coordinator) driver() {
	for range time.Tick(time.Second) {
		co.mu.Lock()
		for _, p := range co.payments {
			if p.Decision == "" || p.Done {
				continue
			}
			for _, part := range p.Participants {
				if !p.acked[part] {
					co.bus.Send(part, Msg{Type: p.Decision, ID: p.ID})
				}
			}
		}
		co.mu.Unlock()
	}
}

func (co *coordinator) handleState(w http.ResponseWriter, r *http.Request) {
	co.mu.Lock()
	defer co.mu.Unlock()
	out := map[string]any{}
	for id, p := range co.payments {
		var decision any
		if p.Decision != "" {
			decision = p.Decision
		}
		out[id] = map[string]any{"decision": decision, "participants": p.Participants,
			"from": p.From, "to": p.To, "amount": p.Amount}
	}
	writeJSON(w, 200, map[string]any{"payments": out})
}
