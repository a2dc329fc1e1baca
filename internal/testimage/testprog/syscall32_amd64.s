#include "textflag.h"

// func fork32Exit() int64
//
// fork(2) through the native entry point; the child, single-threaded and
// running nothing but this code, calls exit(42) through the 32-bit one
// (int 0x80, i386 system call 1) and, should that return, exit(43) through
// the native one. The parent gets the child's pid, or -errno.
TEXT ·fork32Exit(SB), NOSPLIT, $0-8
	MOVQ $57, AX // fork
	SYSCALL
	CMPQ AX, $0
	JNE  parent
	MOVL $1, AX  // i386 exit
	MOVL $42, BX
	INT  $0x80
	MOVQ $60, AX // exit
	MOVQ $43, DI
	SYSCALL

parent:
	MOVQ AX, ret+0(FP)
	RET
