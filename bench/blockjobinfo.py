#!/usr/bin/env python3
"""blockJobInfo calls per second through libvirt-python, for bench/blockjobinfo.mts.

Run by the Node benchmark once per timed round, on domains whose pulls it started; prints one
JSON object. Needs Debian's python3-libvirt (import libvirt). By hand:

  /usr/bin/python3 bench/blockjobinfo.py --domains dom1,dom2 --mode seq --seconds 3

--mode seq:     one call at a time, round-robin over the domains (like Strata's await-each).
--mode threads: --threads threads (default one per domain), thread k calling in a loop on domain
                k mod N, all sharing one connection (libvirt-python releases the GIL during the C
                call).
--mode state:   virDomainGetState one at a time (with --uri test:///default --domains test: the
                cost of a call that never leaves the process).
--event-loop:   first register libvirt's default event loop and run it in a thread, as the Strata
                addon always does (it needs one for events and keepalive); a diagnostic.
"""
import argparse
import json
import os
import sys
import threading
import time

import libvirt


def seq_loop(doms, disk, flags, seconds):
    calls = 0
    no_job = 0
    n = len(doms)
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        info = doms[calls % n].blockJobInfo(disk, flags)
        calls += 1
        if not info:
            no_job += 1
    return calls, no_job, time.perf_counter() - start


def state_loop(doms, disk, flags, seconds):
    """virDomainGetState one at a time: on test:///default, the cost of a call without a daemon."""
    calls = 0
    n = len(doms)
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        doms[calls % n].state()
        calls += 1
    return calls, 0, time.perf_counter() - start


def threaded_loop(doms, disk, flags, seconds, threads):
    counts = [0] * threads
    no_jobs = [0] * threads
    errors = []
    barrier = threading.Barrier(threads + 1)
    times = {}

    def worker(k):
        dom = doms[k % len(doms)]
        barrier.wait()
        deadline = times['deadline']
        try:
            while time.perf_counter() < deadline:
                info = dom.blockJobInfo(disk, flags)
                counts[k] += 1
                if not info:
                    no_jobs[k] += 1
        except libvirt.libvirtError as e:  # reported, not raised in a thread
            errors.append(str(e))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    times['start'] = time.perf_counter()
    times['deadline'] = times['start'] + seconds
    barrier.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - times['start']
    if errors:
        raise RuntimeError('; '.join(errors[:3]))
    return sum(counts), sum(no_jobs), elapsed


def proc_cpu(pids):
    """CPU seconds (user + system, all threads) used so far by these processes."""
    total = 0.0
    hz = os.sysconf('SC_CLK_TCK')
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(') ', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / hz
        except (OSError, IndexError, ValueError):
            pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--uri', default='qemu:///system')
    ap.add_argument('--domains', required=True, help='comma-separated domain names')
    ap.add_argument('--disk', default='vda')
    ap.add_argument('--mode', choices=['seq', 'threads', 'state'], required=True)
    ap.add_argument('--seconds', type=float, default=3.0)
    ap.add_argument('--warmup', type=float, default=1.0)
    ap.add_argument('--threads', type=int, default=0, help='--mode threads: how many (default one per domain)')
    ap.add_argument('--event-loop', action='store_true')
    ap.add_argument('--server-pids', default='', help='libvirtd and QEMU pids whose CPU time to report')
    args = ap.parse_args()

    if args.event_loop:
        libvirt.virEventRegisterDefaultImpl()

        def run_loop():
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run_loop, daemon=True).start()

    conn = libvirt.open(args.uri)
    try:
        doms = [conn.lookupByName(name) for name in args.domains.split(',')]
        flags = libvirt.VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES
        threads = args.threads or len(doms)
        run = {
            'seq': seq_loop,
            'threads': lambda d, k, f, s: threaded_loop(d, k, f, s, threads),
            'state': state_loop,
        }[args.mode]
        if args.warmup > 0:
            run(doms, args.disk, flags, args.warmup)
        server_pids = [int(p) for p in args.server_pids.split(',') if p]
        server0 = proc_cpu(server_pids)
        client0 = time.process_time()
        calls, no_job, elapsed = run(doms, args.disk, flags, args.seconds)
        client_cpu = time.process_time() - client0
        server_cpu = proc_cpu(server_pids) - server0
    finally:
        conn.close()
    json.dump({
        'mode': args.mode,
        'eventLoop': args.event_loop,
        'calls': calls,
        'noJob': no_job,
        'seconds': elapsed,
        'perSecond': calls / elapsed,
        'clientCpuSeconds': client_cpu,
        'serverCpuSeconds': server_cpu,
        'libvirtPython': getattr(libvirt, '__version__', None) or str(libvirt.getVersion()),
        'python': sys.version.split()[0],
    }, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
