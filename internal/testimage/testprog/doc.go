// Package main is pctest, the test program that is the entrypoint of every
// image internal/testimage builds. Later scenarios (the dummy flow, OOM,
// timeouts, large logs, cancel) are all built from its steps, so its
// behaviour is a contract: change it only together with the tests that rely
// on it.
//
// It is built static (CGO_ENABLED=0) and lives at /pctest in the image, with
// /usr/bin/python3 and /usr/bin/python as symbolic links to it.
//
// # Grammar
//
//	pctest STEP [ARG]... [-- STEP [ARG]...]...
//	pctest                      steps from $PCTEST_STEPS (same grammar, split on white space)
//	python3 [-FLAG]... SCRIPT   Kaapana dummy emulation, chosen by argv[0] (see below)
//
// Steps run in order. Every step and argument first has $NAME and ${NAME}
// replaced by the environment variable's value (unset: empty; "$$" is a
// literal "$"), so a processing-container.json template can pass its env
// into a fixed command, e.g. ["/pctest", "write-stdout", "${BYTES}"].
// All steps are parsed before the first one runs: a usage error runs
// nothing.
//
// SIZE is a non-negative integer of bytes with an optional suffix: k, M,
// G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), e.g. "50Mi".
// DURATION is a Go duration ("1.5s", "2m"), a bare number of seconds ("3",
// "0.25"), or "forever".
//
// # Steps
//
//	env                   print the environment, sorted, one NAME=VALUE per line (stdout)
//	echo [WORD]...        print the words separated by spaces and a newline (stdout)
//	id                    print "uid=U gid=G groups=G1,G2" (stdout)
//	cat FILE              copy FILE to stdout
//	ls DIR                list DIR recursively, lexical order, one line per entry (stdout):
//	                        "d PERM - - REL/", "f PERM SIZE SHA256 REL", "l PERM - - REL -> TARGET",
//	                        "o PERM - - REL" (other), then "total files=N bytes=B"
//	copy SRC DST          copy the tree under SRC into DST (created if missing): regular
//	                        files, directories (with permissions) and symbolic links (not followed)
//	transform SRC DST     for every regular file SRC/REL write DST/REL with ASCII letters
//	                        upper-cased and all other bytes unchanged; directories mirrored,
//	                        other entries skipped
//	write-stdout SIZE     write the first SIZE bytes of the pattern (package pattern) to stdout
//	write-stderr SIZE     the same to stderr
//	write-file PATH SIZE  the same into PATH (parents created, file truncated)
//	alloc SIZE            allocate SIZE bytes and write to every page so that they are
//	                        resident; they stay allocated until the program ends. Then
//	                        prints "pctest: allocated SIZE bytes" (stderr)
//	spin DURATION         burn one CPU for DURATION
//	sleep DURATION        sleep
//	wait-file FILE DURATION  wait until FILE exists (checked every 20 ms); an error after DURATION
//	ignore-sigterm        from now on SIGTERM only prints "pctest: SIGTERM ignored" (stderr)
//	exit CODE             exit at once with CODE (0-255); later steps do not run
//	mknod PATH            create a character device node 1:3, mode 0666, at PATH and print
//	                        "mknod: created PATH"; fails (EPERM) without CAP_MKNOD
//	chmod PATH MODE       set PATH's mode (octal up to 7777, setuid/setgid included) and print
//	                        "chmod: PATH MODE"
//	syscall32             fork a child that calls exit(42) through the kernel's 32-bit
//	                        entry point (int 0x80, amd64 only) and print how it ended:
//	                        "syscall32: exit 42" (admitted), "syscall32: exit 43" (the call
//	                        returned an error), "syscall32: killed by SIGNAL"
//
// Example: pctest env -- write-stdout 1Mi -- alloc 64Mi -- sleep 10s -- exit 3
//
// # Exit status
//
// 0 after the last step; CODE for exit; 1 when a step fails (message
// "pctest: STEP: ERROR" on stderr); 2 for a usage error; 143 on SIGTERM
// and 130 on SIGINT (after "pctest: received SIGTERM" on stderr), unless
// ignore-sigterm ran. The program installs handlers for both, so this holds
// also as PID 1 of a container, where default actions do not apply.
//
// # Kaapana dummy emulation
//
// When argv[0]'s base name is "python3" or "python", flags (arguments
// starting with "-") are skipped and the first other argument names the
// script by its base name; Kaapana's dummy processing-container runs these:
//
//	upstream.py     prints "upstream: DUMMY=VALUE" if $DUMMY is set; sleeps $TIME_SLEEP
//	                iterations of one second (unset: 0; not a non-negative integer:
//	                exit 2); writes pattern.DummyUpstream into /home/upstream/channel1
//	                and /home/upstream/channel2 (created if missing); prints one line per
//	                file written; exits 0
//	downstream.py   for channel1 and channel2 under /home/downstream prints every
//	                regular file as "CHANNEL/REL size=N sha256=HEX", then
//	                "downstream: CHANNEL files=N bytes=B"; exits 1 (after listing both)
//	                if either channel has no regular file or cannot be read
//
// Any other script exits 2. $PCTEST_DUMMY_ROOT, when set, is prefixed to
// /home/... so the emulation can be tested outside a container.
package main
