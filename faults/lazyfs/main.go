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
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

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
