package main

// Loopback nodes and files whose writes go to the table instead of the backing file.

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

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
