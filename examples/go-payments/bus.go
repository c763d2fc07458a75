package main

// At-least-once messaging over RabbitMQ: durable queues, persistent messages,
// manual acks after the handler has persisted its effect, and a reconnect loop
// (a cut link or a restarted broker only delays messages; senders resend).

import (
	"context"
	"encoding/json"
	"log"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type Msg struct {
	Type        string `json:"type"` // prepare, vote, commit, abort, ack, query
	ID          string `json:"id"`
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	Amount      int64  `json:"amount,omitempty"`
	Participant string `json:"participant,omitempty"`
	Yes         bool   `json:"yes,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

type Bus struct {
	url, ns, inbox string
	handle         func(Msg)
	ready          atomic.Bool
	mu             sync.Mutex
	pub            *amqp.Channel
	conn           *amqp.Connection
	declared       map[string]bool
}

func NewBus(url, ns, inbox string, handle func(Msg)) *Bus {
	return &Bus{url: url, ns: ns, inbox: inbox, handle: handle}
}

func (b *Bus) queue(name string) string { return b.ns + "." + name }

// Run keeps a session to the broker for ever, reconnecting after any loss.
func (b *Bus) Run() {
	for {
		if err := b.session(); err != nil {
			log.Printf("bus: %v; reconnecting", err)
		}
		b.ready.Store(false)
		time.Sleep(500 * time.Millisecond)
	}
}

func (b *Bus) session() error {
	conn, err := amqp.DialConfig(b.url, amqp.Config{Heartbeat: 2 * time.Second, Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		return err
	}
	defer conn.Close()
	sub, err := conn.Channel()
	if err != nil {
		return err
	}
	pub, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := sub.QueueDeclare(b.queue(b.inbox), true, false, false, false, nil); err != nil {
		return err
	}
	if err := sub.Qos(64, 0, false); err != nil {
		return err
	}
	deliveries, err := sub.Consume(b.queue(b.inbox), "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.pub, b.conn, b.declared = pub, conn, map[string]bool{b.inbox: true}
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.pub = nil; b.mu.Unlock() }()
	b.ready.Store(true)
	log.Printf("bus: connected, consuming %s", b.queue(b.inbox))
	for d := range deliveries {
		var m Msg
		if err := json.Unmarshal(d.Body, &m); err != nil {
			log.Printf("bus: dropping junk message: %v", err)
		} else {
			b.handle(m)
		}
		if err := d.Ack(false); err != nil {
			return err
		}
	}
	return amqp.ErrClosed
}

// Send publishes m to the inbox `to`; a message that cannot be sent now is
// dropped (the protocol resends what matters).
func (b *Bus) Send(to string, m Msg) {
	body, _ := json.Marshal(m)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pub == nil {
		return
	}
	if !b.declared[to] {
		if _, err := b.pub.QueueDeclare(b.queue(to), true, false, false, false, nil); err != nil {
			log.Printf("bus: declare %s: %v", to, err)
			b.conn.Close() // the channel is gone: start a fresh session
			return
		}
		b.declared[to] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := b.pub.PublishWithContext(ctx, "", b.queue(to), false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: body})
	if err != nil {
		log.Printf("bus: send %s to %s: %v", m.Type, to, err)
		b.conn.Close()
	}
}
