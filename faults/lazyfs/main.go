// txchaos-lazyfs: a FUSE filesystem that keeps file data in memory until it is
// fsynced, so that a power cut can be simulated by dropping what was never synced.
//
// Usage: txchaos-lazyfs BACKING MOUNTPOINT
//
// MOUNTPOINT shows BACKING. Metadata (create, mkdir, rename, unlink, link) reaches
// BACKING at once, as on a filesystem that journals metadata synchronously; file
// data and file size (writes, truncates) stay in memory per file until that file
// is fsynced (fsync or fdatasync on any of its handles). Closing a file does not
// sync it: that is the point. One exception, as on ext4 (auto_da_alloc): a file
// renamed over an existing one is synced first, so the replace-via-rename idiom
// never leaves an empty file under the old name.
//
// Commands, one per line on stdin, each answered with one line on stdout:
//
//	drop   forget every unsynced write (the power cut): "dropped FILES BYTES"
//	sync   write every unsynced file to BACKING and fsync it: "synced FILES BYTES"
//	stats  "dirty FILES BYTES"
//	quit   sync, unmount and exit
//
// On stdin's end (its owner died), SIGTERM, SIGINT or SIGHUP it unmounts (lazily
// if the mount is busy) and exits without syncing. It prints "ready" once mounted.
// The mount's source is "txchaos-lazyfs:PID", so a stale one is found and detached.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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

// node is a loopback node whose files buffer their writes in `table`.
type node struct{ fs.LoopbackNode }

func newNode(root *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
	return &node{fs.LoopbackNode{RootData: root}}
}

func (n *node) path() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) wrap(fh fs.FileHandle, inode *fs.Inode, truncate bool) (fs.FileHandle, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return fh, 0
	}
	fd, _ := lf.PassthroughFd()
	f := &file{inner: lf, fd: fd, inode: inode, ino: inode.StableAttr().Ino}
	if truncate {
		table.mu.Lock()
		defer table.mu.Unlock()
		d, errno := table.entry(f.ino, inode, f.procPath())
		if errno != 0 {
			return nil, errno
		}
		d.truncate(0)
	}
	return f, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags&^syscall.O_TRUNC)
	if errno != 0 {
		return nil, 0, errno
	}
	f, errno := n.wrap(fh, n.EmbeddedInode(), flags&syscall.O_TRUNC != 0)
	return f, fl, errno
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, errno := n.wrap(fh, ch, flags&syscall.O_TRUNC != 0)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		out.Size = 0
	}
	return ch, f, fl, errno
}

// patch sets the size (and blocks) programs see for a dirty file.
func patch(ino uint64, out *fuse.Attr) {
	table.mu.Lock()
	defer table.mu.Unlock()
	if d, ok := table.files[ino]; ok {
		out.Size = uint64(d.size)
		out.Blocks = (uint64(d.size) + 511) / 512
	}
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.LoopbackNode.Getattr(ctx, inner(f), out); errno != 0 {
		return errno
	}
	patch(n.ino(), &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		fdPath := n.path()
		if lf, ok := f.(*file); ok {
			fdPath = lf.procPath()
		}
		table.mu.Lock()
		d, errno := table.entry(n.ino(), n.EmbeddedInode(), fdPath)
		if errno == 0 {
			d.truncate(int64(size))
		}
		table.mu.Unlock()
		if errno != 0 {
			return errno
		}
		rest := *in
		rest.Valid &^= fuse.FATTR_SIZE
		in = &rest
	}
	if errno := n.LoopbackNode.Setattr(ctx, inner(f), in, out); errno != 0 {
		return errno
	}
	patch(n.ino(), &out.Attr)
	return 0
}

// Statx, Tmpfile and CopyFileRange would bypass the buffered data: the kernel falls
// back to Getattr, and programs to a named file or read/write.
func (n *node) Statx(context.Context, fs.FileHandle, uint32, uint32, *fuse.StatxOut) syscall.Errno {
	return syscall.ENOSYS
}

func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// lastLink is the inode number of `path` if removing that name frees the file.
func lastLink(path string) (uint64, bool) {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil || st.Nlink != 1 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0, false
	}
	return st.Ino, true
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ino, last := lastLink(filepath.Join(n.path(), name))
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 && last {
		table.mu.Lock()
		table.forget(ino)
		table.mu.Unlock()
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var dest string
	if p, ok := newParent.(*node); ok {
		dest = filepath.Join(p.path(), newName)
	}
	ino, last := lastLink(dest)
	if last { // replace-via-rename: its data reaches the disk first (ext4's auto_da_alloc)
		var st syscall.Stat_t
		if syscall.Lstat(filepath.Join(n.path(), name), &st) == nil {
			table.mu.Lock()
			errno := table.sync(st.Ino)
			table.mu.Unlock()
			if errno != 0 {
				return errno
			}
		}
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 && last && flags&fs.RENAME_EXCHANGE == 0 {
		table.mu.Lock()
		table.forget(ino)
		table.mu.Unlock()
	}
	return errno
}

// file is an open file whose writes go to `table` instead of the backing file.
type file struct {
	inner *fs.LoopbackFile
	fd    int
	inode *fs.Inode
	ino   uint64
}

func inner(f fs.FileHandle) fs.FileHandle {
	if lf, ok := f.(*file); ok {
		return lf.inner
	}
	return f
}

func (f *file) procPath() string { return fmt.Sprintf("/proc/self/fd/%d", f.fd) }

func (f *file) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	table.mu.Lock()
	d, ok := table.files[f.ino]
	if ok {
		n := d.read(buf, off)
		table.mu.Unlock()
		return fuse.ReadResultData(buf[:n]), 0
	}
	table.mu.Unlock()
	return f.inner.Read(ctx, buf, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	table.mu.Lock()
	defer table.mu.Unlock()
	d, errno := table.entry(f.ino, f.inode, f.procPath())
	if errno != 0 {
		return 0, errno
	}
	d.write(data, off)
	return uint32(len(data)), 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	table.mu.Lock()
	defer table.mu.Unlock()
	if _, ok := table.files[f.ino]; ok {
		return table.sync(f.ino)
	}
	return f.inner.Fsync(ctx, flags)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if errno := f.inner.Getattr(ctx, out); errno != 0 {
		return errno
	}
	patch(f.ino, &out.Attr)
	return 0
}

func (f *file) Flush(ctx context.Context) syscall.Errno   { return f.inner.Flush(ctx) }
func (f *file) Release(ctx context.Context) syscall.Errno { return f.inner.Release(ctx) }

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: txchaos-lazyfs BACKING MOUNTPOINT")
		os.Exit(2)
	}
	backing, _ := filepath.Abs(os.Args[1])
	mnt, _ := filepath.Abs(os.Args[2])
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		fmt.Fprintf(os.Stderr, "txchaos-lazyfs: backing directory %s: %v\n", backing, err)
		os.Exit(2)
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev), NewNode: newNode}
	rootNode := newNode(root, nil, "", &st)
	root.RootNode = rootNode
	opts := &fs.Options{MountOptions: fuse.MountOptions{
		FsName: fmt.Sprintf("txchaos-lazyfs:%d", os.Getpid()), Name: "txchaos-lazyfs",
		DirectMount: true, AllowOther: os.Geteuid() == 0, DisableXAttrs: true,
	}}
	server, err := fs.Mount(mnt, rootNode, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "txchaos-lazyfs: mount %s: %v\n", mnt, err)
		os.Exit(1)
	}
	unmount := func() {
		if server.Unmount() != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		unmount()
		os.Exit(0)
	}()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "drop":
			files, size, _ := table.all(false)
			fmt.Printf("dropped %d %d\n", files, size)
		case "sync":
			files, size, errno := table.all(true)
			if errno != 0 {
				fmt.Printf("error %v\n", errno)
			} else {
				fmt.Printf("synced %d %d\n", files, size)
			}
		case "stats":
			table.mu.Lock()
			var size int64
			for _, d := range table.files {
				size += d.bytes()
			}
			fmt.Printf("dirty %d %d\n", len(table.files), size)
			table.mu.Unlock()
		case "quit":
			table.all(true)
			unmount()
			os.Exit(0)
		default:
			fmt.Printf("error unknown command %q\n", in.Text())
		}
	}
	unmount() // stdin closed: the owner is gone
}
