package main

// The table of unsynced writes: what a power cut drops and an fsync writes through.

import (
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

const pageSize = 4096

// dirty is one file's unsynced state: whole pages written since its last sync,
// its size as programs see it, and the smallest size it was truncated to (backing
// bytes at or past minSize are stale: they read as zeros unless rewritten).
type dirty struct {
	fd      int // O_RDWR on the backing inode (works after rename or unlink)
	inode   *fs.Inode
	pages   map[int64][]byte
	size    int64
	minSize int64
}

// lazy is the table of dirty files, keyed by inode number; one lock guards it.
type lazy struct {
	mu    sync.Mutex
	files map[uint64]*dirty
}

var table = &lazy{files: map[uint64]*dirty{}}

// entry returns the dirty state of inode `ino`, opening `fdPath` for it on first use.
func (l *lazy) entry(ino uint64, inode *fs.Inode, fdPath string) (*dirty, syscall.Errno) {
	if d, ok := l.files[ino]; ok {
		return d, 0
	}
	fd, err := syscall.Open(fdPath, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, fs.ToErrno(err)
	}
	d := &dirty{fd: fd, inode: inode, pages: map[int64][]byte{}, size: st.Size, minSize: st.Size}
	l.files[ino] = d
	return d, 0
}

// load returns page p as stored in BACKING, with stale bytes (past minSize) zeroed.
func (d *dirty) load(p int64) []byte {
	buf := make([]byte, pageSize)
	start := p * pageSize
	if start >= d.minSize {
		return buf
	}
	n, _ := syscall.Pread(d.fd, buf, start)
	if n < 0 {
		n = 0
	}
	if valid := d.minSize - start; int64(n) > valid {
		n = int(valid)
	}
	for i := n; i < pageSize; i++ {
		buf[i] = 0
	}
	return buf
}

func (d *dirty) page(p int64) []byte {
	if pg, ok := d.pages[p]; ok {
		return pg
	}
	return d.load(p)
}

func (d *dirty) write(data []byte, off int64) {
	for done := 0; done < len(data); {
		at := off + int64(done)
		p := at / pageSize
		pg, ok := d.pages[p]
		if !ok {
			pg = d.load(p)
			d.pages[p] = pg
		}
		done += copy(pg[at-p*pageSize:], data[done:])
	}
	if end := off + int64(len(data)); end > d.size {
		d.size = end
	}
}

func (d *dirty) read(buf []byte, off int64) int {
	if off >= d.size {
		return 0
	}
	want := int64(len(buf))
	if off+want > d.size {
		want = d.size - off
	}
	for done := int64(0); done < want; {
		at := off + done
		p := at / pageSize
		done += int64(copy(buf[done:want], d.page(p)[at-p*pageSize:]))
	}
	return int(want)
}

func (d *dirty) truncate(size int64) {
	if size < d.size {
		for p := range d.pages {
			if p*pageSize >= size {
				delete(d.pages, p)
			}
		}
		if size%pageSize != 0 { // the page holding the new end: keep its head, zero its tail
			p := size / pageSize
			pg := d.page(p)
			for i := size - p*pageSize; i < pageSize; i++ {
				pg[i] = 0
			}
			d.pages[p] = pg
		}
		if size < d.minSize {
			d.minSize = size
		}
	}
	d.size = size
}

func (d *dirty) bytes() int64 { return int64(len(d.pages)) * pageSize }

// persist writes the file's state to BACKING and fsyncs it.
func (d *dirty) persist() syscall.Errno {
	if err := syscall.Ftruncate(d.fd, d.minSize); err != nil {
		return fs.ToErrno(err)
	}
	for p, pg := range d.pages {
		start := p * pageSize
		n := int64(pageSize)
		if start+n > d.size {
			n = d.size - start
		}
		if n <= 0 {
			continue
		}
		if _, err := syscall.Pwrite(d.fd, pg[:n], start); err != nil {
			return fs.ToErrno(err)
		}
	}
	if err := syscall.Ftruncate(d.fd, d.size); err != nil {
		return fs.ToErrno(err)
	}
	return fs.ToErrno(syscall.Fsync(d.fd))
}

// sync persists inode `ino` if it is dirty, and forgets its dirty state.
func (l *lazy) sync(ino uint64) syscall.Errno {
	d, ok := l.files[ino]
	if !ok {
		return 0
	}
	if errno := d.persist(); errno != 0 {
		return errno
	}
	syscall.Close(d.fd)
	delete(l.files, ino)
	return 0
}

func (l *lazy) forget(ino uint64) {
	if d, ok := l.files[ino]; ok {
		syscall.Close(d.fd)
		delete(l.files, ino)
	}
}

// all applies `persist` (or nothing) to every dirty file, forgets them all, and
// tells the kernel to drop its cached pages and sizes of them.
func (l *lazy) all(persist bool) (files int, size int64, errno syscall.Errno) {
	l.mu.Lock()
	var inodes []*fs.Inode
	for ino, d := range l.files {
		files++
		size += d.bytes()
		if persist {
			if e := d.persist(); e != 0 {
				errno = e
			}
		}
		syscall.Close(d.fd)
		delete(l.files, ino)
		inodes = append(inodes, d.inode)
	}
	l.mu.Unlock()
	for _, n := range inodes { // outside the lock: the kernel may call back into us
		if n != nil {
			n.NotifyContent(0, 0)
		}
	}
	return files, size, errno
}
