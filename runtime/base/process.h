/* process.h: how a program of the project ends before main returns (a user error, --help).
 *
 * process.c calls exit(), which runs the atexit handlers (the swap folder's removal, the
 * checkpoint and NVMe locks' release). process_sim.c is the simulation build's: its whole
 * program runs as a SimGrid actor, where exit() aborts (SimGrid 3.32: "Process called exit when
 * leaving", then a second engine and SIGABRT), so it flushes stdio and calls _exit(); nothing
 * there registers an atexit handler (no swap files, no checkpoints). */
#ifndef GPT50B_PROCESS_H
#define GPT50B_PROCESS_H

__attribute__((noreturn)) void process_exit(int code);

#endif
