package main

// A participant (an account shard or the ledger): it persists "prepared"
// (fsynced, funds held) before voting yes, applies a commit once, answers a
// redelivered message from what it already recorded, and asks the coordinator
// about any payment it has held in doubt for more than two seconds.
//
// Mutant "no-dedup" (GOPAY_MUTANT=no-dedup): a redelivered commit is applied
// again — the classic non-idempotent consumer under at-least-once delivery.

import (
	"log"
	"net/http"
	"sync"
	"time"
)

type txn struct {
	State   string // prepared, committed, aborted
	Applied int
	From    string
	To      string
	Amount  int64
	since   time.Time
}

type participant struct {
	c        config
	mu       sync.Mutex
	txns     map[string]*txn
	balances map[string]int64 // committed balances of the accounts this shard owns
	held     map[string]int64 // funds held by prepared payments
	store    *Store
	bus      *Bus
}

func (pt *participant) owns(account string) bool {
	return pt.c.role == "shard" && pt.c.owner(account) == pt.c.name
}

// apply is the one place a record changes memory: on replay and live alike.
func (pt *participant) apply(rec map[string]any) {
	id := rec["id"].(string)
	t := pt.txns[id]
	switch rec["op"] {
	case "prepared":
		t = &txn{State: "prepared", From: rec["from"].(string), To: rec["to"].(string),
			Amount: num(rec["amount"]), since: time.Now()}
		pt.txns[id] = t
		if pt.owns(t.From) {
			pt.held[t.From] += t.Amount
		}
	case "committed":
		if t.State == "prepared" && pt.owns(t.From) {
			pt.held[t.From] -= t.Amount
		}
		t.State = "committed"
		t.Applied++
		if pt.owns(t.From) {
			pt.balances[t.From] -= t.Amount
		}
		if pt.owns(t.To) {
			pt.balances[t.To] += t.Amount
		}
	case "aborted":
		if t == nil {
			t = &txn{}
			pt.txns[id] = t
		} else if t.State == "prepared" && pt.owns(t.From) {
			pt.held[t.From] -= t.Amount
		}
		t.State = "aborted"
	}
}

func (pt *participant) record(rec map[string]any) {
	pt.store.Append(rec)
	pt.apply(rec)
}

func runParticipant(c config) {
	pt := &participant{c: c, txns: map[string]*txn{}, balances: map[string]int64{}, held: map[string]int64{}}
	for acct, bal := range c.accounts {
		if pt.owns(acct) {
			pt.balances[acct] = bal
		}
	}
	store, err := OpenStore(c.storePath(), pt.apply)
	if err != nil {
		log.Fatalf("store: %v", err)
	}
	pt.store = store
	pt.bus = NewBus(c.amqpURL, c.ns, c.name, pt.onMessage)
	go pt.askWhenInDoubt()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", pt.handleState)
	serve(c, mux, pt.bus)
}

func (pt *participant) vote(m Msg, yes bool, reason string) {
	pt.bus.Send("coordinator", Msg{Type: "vote", ID: m.ID, Participant: pt.c.name, Yes: yes, Reason: reason})
}

func (pt *participant) ack(m Msg) {
	pt.bus.Send("coordinator", Msg{Type: "ack", ID: m.ID, Participant: pt.c.name})
}

func (pt *participant) onMessage(m Msg) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	t := pt.txns[m.ID]
	switch m.Type {
	case "prepare":
		if t != nil { // redelivered: answer from the record
			pt.vote(m, t.State != "aborted", "aborted")
			return
		}
		if pt.owns(m.From) && pt.balances[m.From]-pt.held[m.From] < m.Amount {
			pt.record(map[string]any{"op": "aborted", "id": m.ID})
			pt.vote(m, false, "insufficient-funds")
			return
		}
		pt.record(map[string]any{"op": "prepared", "id": m.ID, "from": m.From, "to": m.To, "amount": m.Amount})
		hit("after-prepare")
		pt.vote(m, true, "")
	case "commit":
		switch {
		case t == nil:
			log.Printf("commit for unknown payment %s: not acked", m.ID)
			return
		case t.State == "prepared", t.State == "committed" && pt.c.mutant == "no-dedup":
			pt.record(map[string]any{"op": "committed", "id": m.ID})
			hit("after-commit")
		case t.State == "aborted":
			log.Printf("CONFLICT: commit for aborted payment %s", m.ID)
		}
		pt.ack(m)
	case "abort":
		if t != nil && t.State == "committed" {
			log.Printf("CONFLICT: abort for committed payment %s", m.ID)
		} else if t == nil || t.State == "prepared" {
			pt.record(map[string]any{"op": "aborted", "id": m.ID})
		}
		pt.ack(m)
	}
}

func (pt *participant) askWhenInDoubt() {
	for range time.Tick(time.Second) {
		pt.mu.Lock()
		for id, t := range pt.txns {
			if t.State == "prepared" && time.Since(t.since) > 2*time.Second {
				pt.bus.Send("coordinator", Msg{Type: "query", ID: id, Participant: pt.c.name})
			}
		}
		pt.mu.Unlock()
	}
}

func (pt *participant) handleState(w http.ResponseWriter, r *http.Request) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	txns := map[string]any{}
	for id, t := range pt.txns {
		txns[id] = map[string]any{"state": t.State, "applied": t.Applied}
	}
	out := map[string]any{"txns": txns}
	if pt.c.role == "shard" {
		out["balances"] = pt.balances
	} else {
		out["in_every_payment"] = true
	}
	writeJSON(w, 200, out)
}
