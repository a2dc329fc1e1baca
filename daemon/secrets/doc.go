// Package secrets owns the node's secret store: the values a task spec
// names (EnvVar.secret) instead of carrying, such as a Kaapana project
// password or client secret, kept by the operator as files in one directory
// ([secrets] dir) and read by the daemon when it creates a container.
//
// # Basics
//
// A secret is a regular file <dir>/<name>, name
// [A-Za-z0-9][A-Za-z0-9._-]{0,62} (spec.CheckSecretName). [New] takes the
// directory and the size cap; [Store.Check] says whether a secret exists
// and may be used (at submit), [Store.Read] returns its content (at
// container creation, so that replacing the file rotates the secret for
// every container created afterwards). Neither keeps a descriptor or a
// cache: each call opens the directory anew.
//
// # What is refused, and why
//
// The directory must be owned by root (the daemon's uid) and writable by no
// one else; every secret file must be a regular file owned by root with no
// group or other permission bits, at most the cap in size, without a NUL
// byte. The directory is opened O_DIRECTORY|O_NOFOLLOW and each file
// beneath it by openat(2) with O_NOFOLLOW|O_NONBLOCK, so neither a symlink
// (to /etc/shadow, to a file of another user) nor a FIFO (which would block
// the daemon) is ever read; the checks are made with fstat on the opened
// descriptor, not on the name. Anything else is an error wrapping
// [ErrNotFound] or [ErrRefused] that names the secret and says why, never
// its content.
//
// # Caveats
//
// The content is used as is, except that one trailing newline is dropped
// (`echo value > file` is how most operators write a file). The store is
// only as private as root: a container sees the value in its environment
// (and so does anyone who may inspect the container's process on the host).
package secrets
