package main

// A durable append-only log of JSON records: each write is fsynced before it
// returns, so a record that was acted on survives kill -9. On open, records
// are replayed in order; a torn last line (a crash mid-write) is dropped.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

type Store struct {
	mu sync.Mutex
	f  *os.File
}

// OpenStore replays every record of path into apply, then opens it for appending.
func OpenStore(path string, apply func(rec map[string]any)) (*Store, error) {
	if data, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(data)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				apply(rec)
			}
		}
		data.Close()
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Store{f: f}, nil
}

// Append writes one record and fsyncs; it panics if the disk refuses (a
// service that cannot persist must not keep answering).
func (s *Store) Append(rec map[string]any) {
	line, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		panic(fmt.Sprintf("store write: %v", err))
	}
	if err := s.f.Sync(); err != nil {
		panic(fmt.Sprintf("store fsync: %v", err))
	}
}

// num reads a record's number: int64 when the record was made here, float64 when replayed.
func num(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	panic(fmt.Sprintf("not a number: %v", v))
}
